//! The computer's time zone, for the predecessor's `tz_offset` and `dst_offset` placeholders:
//! the standard UTC offset and the daylight-saving shift, in seconds, read from the system's
//! zone database (no network).

use jiff::civil::date;
use jiff::tz::TimeZone;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Offsets {
    /// The offset from UTC outside daylight-saving time.
    pub standard: i32,
    /// How much daylight-saving time adds (0 where there is none).
    pub daylight_saving: i32,
}

/// The offsets of the system's time zone this year; `None` when it cannot be read.
pub fn offsets() -> Option<Offsets> {
    of(&TimeZone::try_system().ok()?)
}

/// Mid-January and mid-July: one is summer in each hemisphere; standard time is the smaller.
fn of(tz: &TimeZone) -> Option<Offsets> {
    let year = jiff::Timestamp::now().to_zoned(tz.clone()).year();
    let at = |month| {
        date(year, month, 15)
            .at(12, 0, 0, 0)
            .to_zoned(tz.clone())
            .ok()
            .map(|z| z.offset().seconds())
    };
    let (jan, jul) = (at(1)?, at(7)?);
    Some(Offsets {
        standard: jan.min(jul),
        daylight_saving: (jan - jul).abs(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn northern_southern_and_no_dst_zones() {
        let get = |name| of(&TimeZone::get(name).expect("zone in the system database"));
        if TimeZone::get("Europe/Madrid").is_err() {
            thinger_patch_test_kit::skip("no time zone database on this system (tzdata)");
            return;
        }
        assert_eq!(
            get("Europe/Madrid"),
            Some(Offsets {
                standard: 3600,
                daylight_saving: 3600
            })
        );
        assert_eq!(
            get("Australia/Sydney"),
            Some(Offsets {
                standard: 36000,
                daylight_saving: 3600
            })
        );
        assert_eq!(
            get("Asia/Kolkata"),
            Some(Offsets {
                standard: 19800,
                daylight_saving: 0
            })
        );
        assert_eq!(
            get("UTC"),
            Some(Offsets {
                standard: 0,
                daylight_saving: 0
            })
        );
    }
}
