//! Send windows in the recipient's zone, across midnight and DST.

use crate::common::instant;
use rassylka_schedule::{SendWindow, Tz, recipient_zone};

fn window(from: &str, to: &str) -> SendWindow {
    serde_json::from_str(&format!(r#"{{"from": "{from}", "to": "{to}"}}"#)).unwrap()
}

#[test]
fn the_window_is_read_in_the_recipients_zone_or_the_mailings() {
    let day = window("09:00", "21:00");
    let at = instant("2027-03-01T00:30:00Z");
    assert!(day.contains(at, Tz::Asia__Vladivostok));
    assert!(!day.contains(at, Tz::Europe__Moscow));
    assert_eq!(
        day.earliest_delivery_for(at, Some(Tz::Asia__Vladivostok), Tz::Europe__Moscow),
        Some(at)
    );
    let moscow_morning = Some(instant("2027-03-01T09:00:00+03:00"));
    assert_eq!(
        day.earliest_delivery_for(at, None, Tz::Europe__Moscow),
        moscow_morning
    );
    assert_eq!(
        day.earliest_delivery(at, Tz::Europe__Moscow),
        moscow_morning
    );
    assert_eq!(recipient_zone(None, Tz::Europe__Moscow), Tz::Europe__Moscow);
    assert_eq!(
        recipient_zone(Some(Tz::Asia__Yekaterinburg), Tz::Europe__Moscow),
        Tz::Asia__Yekaterinburg
    );
}

#[test]
fn the_window_includes_its_opening_and_excludes_its_closing() {
    let day = window("09:00", "21:00");
    let tz = Tz::Europe__Moscow;
    assert!(day.contains(instant("2027-03-01T09:00:00+03:00"), tz));
    assert!(!day.contains(instant("2027-03-01T08:59:59+03:00"), tz));
    assert!(day.contains(instant("2027-03-01T20:59:59+03:00"), tz));
    assert!(!day.contains(instant("2027-03-01T21:00:00+03:00"), tz));
    assert_eq!(
        day.earliest_delivery(instant("2027-03-01T21:00:00+03:00"), tz),
        Some(instant("2027-03-02T09:00:00+03:00"))
    );
    assert_eq!(
        day.next_opening(instant("2027-03-01T10:00:00+03:00"), tz),
        Some(instant("2027-03-02T09:00:00+03:00"))
    );
}

#[test]
fn a_window_across_midnight_works() {
    let night = window("22:00", "06:00");
    let tz = Tz::Asia__Yekaterinburg;
    for inside in [
        "2027-03-01T22:00:00+05:00",
        "2027-03-01T23:30:00+05:00",
        "2027-03-02T05:59:00+05:00",
    ] {
        assert!(night.contains(instant(inside), tz), "{inside}");
    }
    for outside in [
        "2027-03-02T06:00:00+05:00",
        "2027-03-02T12:00:00+05:00",
        "2027-03-01T21:59:00+05:00",
    ] {
        assert!(!night.contains(instant(outside), tz), "{outside}");
    }
    assert_eq!(
        night.earliest_delivery(instant("2027-03-02T07:00:00+05:00"), tz),
        Some(instant("2027-03-02T22:00:00+05:00"))
    );
    assert_eq!(
        night.next_opening(instant("2027-03-01T23:00:00+05:00"), tz),
        Some(instant("2027-03-02T22:00:00+05:00"))
    );
}

#[test]
fn an_opening_in_a_dst_gap_is_the_first_instant_after_it() {
    let cases = [
        // Santiago skips 00:00–01:00: the window opens at 01:00 -03:00.
        (
            "00:00",
            "08:00",
            Tz::America__Santiago,
            "2024-09-08T03:30:00Z",
            "2024-09-08T01:00:00-03:00",
        ),
        // Berlin skips 02:00–03:00.
        (
            "02:30",
            "21:00",
            Tz::Europe__Berlin,
            "2025-03-30T00:30:00Z",
            "2025-03-30T03:00:00+02:00",
        ),
        // Lord Howe skips 02:00–02:30.
        (
            "02:00",
            "21:00",
            Tz::Australia__Lord_Howe,
            "2024-10-05T15:00:00Z",
            "2024-10-06T02:30:00+11:00",
        ),
        (
            "09:00",
            "21:00",
            Tz::America__New_York,
            "2025-03-09T06:00:00Z",
            "2025-03-09T09:00:00-04:00",
        ),
    ];
    for (from, to, tz, at, opens) in cases {
        let window = window(from, to);
        assert!(!window.contains(instant(at), tz), "{tz}");
        assert_eq!(
            window.earliest_delivery(instant(at), tz),
            Some(instant(opens)),
            "{tz}"
        );
    }
}

#[test]
fn the_repeated_hour_of_a_fall_back_enters_the_window_again() {
    let tz = Tz::Europe__Berlin;
    let late_night = window("02:30", "21:00");
    // 02:10 CEST, first pass: opens at 02:30 CEST.
    assert_eq!(
        late_night.earliest_delivery(instant("2025-10-26T00:10:00Z"), tz),
        Some(instant("2025-10-26T00:30:00Z"))
    );
    // 02:10 CET, second pass: the clock reaches 02:30 again, at 02:30 CET.
    assert_eq!(
        late_night.earliest_delivery(instant("2025-10-26T01:10:00Z"), tz),
        Some(instant("2025-10-26T01:30:00Z"))
    );
    // A night window closing at 02:30 reopens when the clock falls back to 02:00.
    let night = window("22:00", "02:30");
    assert!(!night.contains(instant("2025-10-26T00:40:00Z"), tz));
    assert_eq!(
        night.next_opening(instant("2025-10-26T00:40:00Z"), tz),
        Some(instant("2025-10-26T01:00:00Z"))
    );
}

#[test]
fn a_day_starts_at_midnight_or_at_the_first_hour_after_a_gap_that_swallowed_it() {
    use rassylka_schedule::{local_day_start, next_local_midnight};
    let day = |text: &str| chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap();
    assert_eq!(
        local_day_start(day("2026-12-01"), Tz::Europe__Moscow),
        Some(instant("2026-11-30T21:00:00Z"))
    );
    // Havana moves its clocks from 00:00 to 01:00 on 2026-03-08: the day starts at 01:00 CDT.
    assert_eq!(
        local_day_start(day("2026-03-08"), Tz::America__Havana),
        Some(instant("2026-03-08T05:00:00Z"))
    );
    assert_eq!(
        next_local_midnight(instant("2026-03-07T12:00:00-05:00"), Tz::America__Havana),
        instant("2026-03-08T05:00:00Z")
    );
}
