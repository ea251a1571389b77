//! Addresses as an unsubscribe page shows them: enough to recognise, not enough to harvest.

use rassylka_model::ChannelKind;

/// `a***@example.com`, `+7916***4567`; other contacts keep their first two characters.
pub fn mask_address(channel: ChannelKind, address: &str) -> String {
    let chars: Vec<char> = address.chars().collect();
    match channel {
        ChannelKind::Email => match address.rsplit_once('@') {
            Some((local, domain)) => {
                let first: String = local.chars().take(1).collect();
                format!("{first}***@{domain}")
            }
            None => "***".into(),
        },
        ChannelKind::Sms if chars.len() > 9 => {
            let head: String = chars[..5].iter().collect();
            let tail: String = chars[chars.len() - 4..].iter().collect();
            format!("{head}***{tail}")
        }
        _ => {
            let head: String = chars.iter().take(2).collect();
            format!("{head}***")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_masked_as_the_spec_shows() {
        assert_eq!(
            mask_address(ChannelKind::Email, "anna@example.com"),
            "a***@example.com"
        );
        assert_eq!(
            mask_address(ChannelKind::Email, "ёж@почта.рф"),
            "ё***@почта.рф"
        );
        assert_eq!(
            mask_address(ChannelKind::Sms, "+79161234567"),
            "+7916***4567"
        );
        assert_eq!(mask_address(ChannelKind::Telegram, "123456789"), "12***");
        assert_eq!(mask_address(ChannelKind::Sms, "+7"), "+7***");
    }
}
