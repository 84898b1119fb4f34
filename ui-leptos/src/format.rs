//! Numbers and dates as a merchant reads them, and the little date arithmetic charts need
//! (without a date library in the browser bundle).

/// `1234.4` → `"1,234"`.
pub fn whole(value: f64) -> String {
    let rounded = value.round();
    let negative = rounded < 0.0;
    let digits = format!("{:.0}", rounded.abs());
    let mut out = String::new();
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    if negative { format!("-{out}") } else { out }
}

/// A number with one decimal below 10, whole above: `2.5`, `14`, `1,200`.
pub fn short(value: f64) -> String {
    if value.abs() < 10.0 {
        format!("{value:.1}")
    } else {
        whole(value)
    }
}

/// An axis label: round values without decimals (`0`, `2,500`), others with one (`2.5`).
pub fn axis(value: f64) -> String {
    if value.fract() == 0.0 {
        whole(value)
    } else {
        format!("{value:.1}")
    }
}

/// `0.123` → `"+12 %"`.
pub fn signed_percent(share: f64) -> String {
    let percent = (share * 100.0).round();
    if percent > 0.0 {
        format!("+{percent:.0} %")
    } else {
        format!("{percent:.0} %")
    }
}

/// `0.95` → `"95 %"`.
pub fn percent(share: f64) -> String {
    format!("{:.0} %", share * 100.0)
}

/// Days since 1970-01-01 of a `YYYY-MM-DD` date.
pub fn day_number(date: &str) -> Option<i64> {
    let mut parts = date.get(..10)?.split('-');
    let year: i64 = parts.next()?.parse().ok()?;
    let month: i64 = parts.next()?.parse().ok()?;
    let day: i64 = parts.next()?.parse().ok()?;
    // Howard Hinnant's days_from_civil.
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * (month + if month > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    Some(era * 146_097 + day_of_era - 719_468)
}

/// The `YYYY-MM-DD` date of a day number.
pub fn date_of(days: i64) -> String {
    let shifted = days + 719_468;
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// `2024-03-05` → `"5 Mar"`.
pub fn day_month(date: &str) -> String {
    let month: usize = date.get(5..7).and_then(|m| m.parse().ok()).unwrap_or(1);
    let day: u32 = date.get(8..10).and_then(|d| d.parse().ok()).unwrap_or(1);
    format!("{day} {}", MONTHS[month.clamp(1, 12) - 1])
}

/// `2024-03-05T10:11:12Z` → `"5 Mar 2024, 10:11 UTC"`.
pub fn moment(timestamp: &str) -> String {
    let year = timestamp.get(..4).unwrap_or_default();
    let time = timestamp.get(11..16).unwrap_or_default();
    format!("{} {year}, {time} UTC", day_month(timestamp))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_like_a_merchant_writes_them() {
        assert_eq!(whole(1_234_567.4), "1,234,567");
        assert_eq!(whole(-1200.0), "-1,200");
        assert_eq!(whole(999.0), "999");
        assert_eq!(short(2.46), "2.5");
        assert_eq!(axis(0.0), "0");
        assert_eq!(axis(2.5), "2.5");
        assert_eq!(axis(7.0), "7");
        assert_eq!(axis(10_000.0), "10,000");
        assert_eq!(signed_percent(0.123), "+12 %");
        assert_eq!(signed_percent(-0.5), "-50 %");
    }

    #[test]
    fn day_numbers_round_trip_across_leap_years() {
        assert_eq!(day_number("1970-01-01"), Some(0));
        assert_eq!(day_number("2024-03-01"), Some(19_783));
        for day in [0, 19_782, 19_783, 20_000, -1, 11_016] {
            assert_eq!(day_number(&date_of(day)), Some(day), "{day}");
        }
        assert_eq!(date_of(19_782), "2024-02-29");
        assert_eq!(day_month("2024-02-29"), "29 Feb");
    }
}
