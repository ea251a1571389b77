use serde::{Deserialize, Serialize};

/// How an SMS is encoded on the air.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SmsEncoding {
    /// GSM 03.38 7-bit default alphabet: 160 septets alone, 153 per part.
    Gsm7,
    /// UCS-2: 70 UTF-16 code units alone, 67 per part.
    Ucs2,
}

/// The result of [`sms_segments`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SmsSegments {
    /// The encoding the whole text needs.
    pub encoding: SmsEncoding,
    /// Septets (GSM-7, extension characters count 2) or UTF-16 code units (UCS-2).
    pub units: u32,
    /// Billable parts; 0 for an empty text.
    pub parts: u32,
}

const GSM7_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?\
¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
const GSM7_EXTENSION: &str = "^{}\\[~]|€\u{000C}";

fn gsm7_septets(c: char) -> Option<u32> {
    if GSM7_BASIC.contains(c) {
        Some(1)
    } else if GSM7_EXTENSION.contains(c) {
        Some(2)
    } else {
        None
    }
}

/// Counts the parts an SMS text is billed as.
///
/// GSM-7 is used only when every character is in the GSM 03.38 basic or extension table;
/// one Cyrillic letter, `«»`, `—`, `№`, `₽` or an emoji makes the whole text UCS-2. A text that
/// fits one part (160 septets or 70 units) is 1 part; a longer one is cut into parts of at
/// most 153 septets or 67 units without splitting an escape pair or a surrogate pair, so it can
/// need one part more than `ceil(units / 153)`.
pub fn sms_segments(text: &str) -> SmsSegments {
    let gsm: Option<Vec<u32>> = text.chars().map(gsm7_septets).collect();
    let (encoding, widths, single, multi) = match gsm {
        Some(widths) => (SmsEncoding::Gsm7, widths, 160, 153),
        None => (
            SmsEncoding::Ucs2,
            text.chars().map(|c| c.len_utf16() as u32).collect(),
            70,
            67,
        ),
    };
    let units: u32 = widths.iter().sum();
    let parts = if units == 0 {
        0
    } else if units <= single {
        1
    } else {
        let mut parts = 1;
        let mut filled = 0;
        for width in widths {
            if filled + width > multi {
                parts += 1;
                filled = 0;
            }
            filled += width;
        }
        parts
    };
    SmsSegments {
        encoding,
        units,
        parts,
    }
}
