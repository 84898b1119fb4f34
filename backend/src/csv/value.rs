//! Cell values of sales exports: dates and times in the forms retail systems write, and numbers with
//! currency symbols and thousands separators.

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, TimeZone};

use crate::domain::trim;

/// How to read an all-numeric date like `03/04/2024`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DateOrder {
    /// Slashes are month first (US), dots and dashes day first (EU); a first part over 12 is a day.
    #[default]
    Auto,
    /// Always month first: `03/04/2024` is March 4.
    MonthFirst,
    /// Always day first: `03/04/2024` is April 3.
    DayFirst,
}

impl DateOrder {
    /// Parses `auto`, `mdy` (or `us`) and `dmy` (or `eu`).
    ///
    /// # Errors
    /// For anything else, with a message naming the choices.
    pub fn parse(value: &str) -> Result<Self, String> {
        match value.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(Self::Auto),
            "mdy" | "us" => Ok(Self::MonthFirst),
            "dmy" | "eu" => Ok(Self::DayFirst),
            other => Err(format!(
                "\"{other}\" is not a date order (use auto, mdy or dmy)"
            )),
        }
    }
}

/// Reads the local date of a sale from a date (or date-time) cell. A time with an offset (`Z`,
/// `+02:00`, ` -0500`) is an instant and is converted to `zone`; a time without one is already local.
///
/// # Errors
/// A message naming the problem, for the row error.
pub fn local_date(text: &str, zone: chrono_tz::Tz, order: DateOrder) -> Result<NaiveDate, String> {
    let text = trim(text);
    if text.is_empty() {
        return Err("date is empty".into());
    }
    if let Some(date) = iso_date(text) {
        return Ok(date);
    }
    let (date_part, rest) = split_date_time(text);
    let date = parse_date(date_part, order).ok_or_else(|| {
        format!("\"{text}\" is not a date (expected e.g. 2024-03-01, 03/01/2024 or 01.03.2024)")
    })?;
    let rest = rest.trim();
    if rest.is_empty() {
        return Ok(date);
    }
    let (time_text, offset) = split_offset(rest)
        .ok_or_else(|| format!("\"{text}\" has an unreadable time zone offset"))?;
    let time = parse_time(time_text).ok_or_else(|| format!("\"{text}\" has an unreadable time"))?;
    match offset {
        None => Ok(date),
        Some(offset) => {
            let instant: DateTime<FixedOffset> = offset
                .from_local_datetime(&NaiveDateTime::new(date, time))
                .single()
                .ok_or_else(|| format!("\"{text}\" is not a valid instant"))?;
            Ok(instant.with_timezone(&zone).date_naive())
        }
    }
}

/// `2024-03-01` exactly, read without allocating: the form most files use on every row. Anything
/// else (including an impossible date) takes the general path, which names the problem.
fn iso_date(text: &str) -> Option<NaiveDate> {
    let bytes = text.as_bytes();
    if bytes.len() != 10 || bytes[4] != b'-' || bytes[7] != b'-' {
        return None;
    }
    let digits = |range: std::ops::Range<usize>| {
        bytes[range].iter().try_fold(0u32, |value, byte| {
            byte.is_ascii_digit()
                .then(|| value * 10 + u32::from(byte - b'0'))
        })
    };
    let year = i32::try_from(digits(0..4)?).ok()?;
    NaiveDate::from_ymd_opt(year, digits(5..7)?, digits(8..10)?)
}

fn split_date_time(text: &str) -> (&str, &str) {
    // ISO 8601 joins with `T`; exports join with a space.
    if let Some(index) = text.find(' ') {
        return (&text[..index], &text[index..]);
    }
    if text.len() > 10 && text.as_bytes().get(10) == Some(&b'T') {
        return (&text[..10], &text[11..]);
    }
    (text, "")
}

fn parse_date(text: &str, order: DateOrder) -> Option<NaiveDate> {
    let separator = text.chars().find(|c| matches!(c, '-' | '/' | '.'))?;
    let parts: Vec<&str> = text.split(separator).collect();
    if parts.len() != 3
        || parts
            .iter()
            .any(|part| part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    let numbers: Vec<u32> = parts
        .iter()
        .map(|part| part.parse().ok())
        .collect::<Option<_>>()?;
    if parts[0].len() == 4 {
        return NaiveDate::from_ymd_opt(i32::try_from(numbers[0]).ok()?, numbers[1], numbers[2]);
    }
    let year = match parts[2].len() {
        4 => i32::try_from(numbers[2]).ok()?,
        2 => 2000 + i32::try_from(numbers[2]).ok()?,
        _ => return None,
    };
    let month_first = match order {
        DateOrder::MonthFirst => true,
        DateOrder::DayFirst => false,
        DateOrder::Auto => separator == '/' && numbers[0] <= 12,
    };
    let (month, day) = if month_first {
        (numbers[0], numbers[1])
    } else {
        (numbers[1], numbers[0])
    };
    NaiveDate::from_ymd_opt(year, month, day)
}

/// Splits `10:15:32 -0500`, `10:15:32Z`, `10:15:32+02:00`, `10:15 PM`, `10:15:32 UTC` into the time
/// and its offset, if any. `None` when an offset is present but unreadable.
fn split_offset(text: &str) -> Option<(&str, Option<FixedOffset>)> {
    if let Some(time) = text.strip_suffix('Z').or_else(|| text.strip_suffix(" UTC")) {
        return Some((time.trim(), FixedOffset::east_opt(0)));
    }
    // An offset sign appears after the time's digits (never at position 0).
    let sign_index = text
        .char_indices()
        .skip(1)
        .find(|(_, c)| *c == '+' || *c == '-')
        .map(|(index, _)| index);
    let Some(index) = sign_index else {
        return Some((text, None));
    };
    let (time, offset) = text.split_at(index);
    let sign = if offset.starts_with('-') { -1 } else { 1 };
    let digits: String = offset[1..].chars().filter(|c| *c != ':').collect();
    if !(digits.len() == 4 || digits.len() == 2) || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let hours: i32 = digits[..2].parse().ok()?;
    let minutes: i32 = if digits.len() == 4 {
        digits[2..].parse().ok()?
    } else {
        0
    };
    let offset = FixedOffset::east_opt(sign * (hours * 3600 + minutes * 60))?;
    Some((time.trim(), Some(offset)))
}

fn parse_time(text: &str) -> Option<NaiveTime> {
    let text = text.trim();
    let upper = text.to_ascii_uppercase();
    let (clock, meridiem) = if let Some(clock) = upper.strip_suffix("AM") {
        (clock.trim().to_owned(), Some(false))
    } else if let Some(clock) = upper.strip_suffix("PM") {
        (clock.trim().to_owned(), Some(true))
    } else {
        (upper, None)
    };
    let clock = clock.split('.').next()?;
    let parts: Vec<u32> = clock
        .split(':')
        .map(|part| part.parse().ok())
        .collect::<Option<_>>()?;
    let (mut hour, minute, second) = match parts.as_slice() {
        [hour, minute] => (*hour, *minute, 0),
        [hour, minute, second] => (*hour, *minute, *second),
        _ => return None,
    };
    match meridiem {
        Some(pm) if (1..=12).contains(&hour) => hour = hour % 12 + if pm { 12 } else { 0 },
        Some(_) => return None,
        None => {}
    }
    NaiveTime::from_hms_opt(hour, minute, second)
}

/// Reads a number such as `12`, `-3`, `1,234.50`, `1.234,50`, `$12.00`, `-$3.50`, `(4.00)`, `€ 5`.
///
/// # Errors
/// A message naming the value when it is not a finite number.
pub fn number(text: &str) -> Result<f64, String> {
    let trimmed = trim(text);
    let error = || format!("\"{trimmed}\" is not a number");
    if let Some(value) = plain_number(trimmed) {
        return if value.is_finite() && value.abs() <= 1e12 {
            Ok(value)
        } else {
            Err(error())
        };
    }
    let mut negative = false;
    let mut body = trimmed;
    if let Some(inner) = body
        .strip_prefix('(')
        .and_then(|inner| inner.strip_suffix(')'))
    {
        negative = true;
        body = inner;
    }
    let mut cleaned = String::with_capacity(body.len());
    for c in body.chars() {
        match c {
            '0'..='9' | '.' | ',' => cleaned.push(c),
            '-' | '\u{2212}' if !negative && cleaned.is_empty() => negative = true,
            '-' if cleaned.is_empty() => return Err(error()),
            '$' | '€' | '£' | '¥' | ' ' | '\u{a0}' | '\'' => {}
            'A'..='Z' if cleaned.is_empty() || body.ends_with(c) => {}
            _ => return Err(error()),
        }
    }
    if cleaned.is_empty() {
        return Err(error());
    }
    let normalised = normalise_separators(&cleaned).ok_or_else(error)?;
    let value: f64 = normalised.parse().map_err(|_| error())?;
    if !value.is_finite() || value.abs() > 1e12 {
        return Err(error());
    }
    Ok(if negative { -value } else { value })
}

/// `12`, `-3` or `2.50`: digits with at most one dot, read without allocating. The general path
/// would clean such a text into itself, so both read the same value.
fn plain_number(text: &str) -> Option<f64> {
    let unsigned = text.strip_prefix('-').unwrap_or(text);
    let value = short_decimal(unsigned.as_bytes()).or_else(|| {
        let bytes = unsigned.as_bytes();
        let dots = bytes.iter().filter(|byte| **byte == b'.').count();
        let plain = dots <= 1
            && bytes.len() > dots
            && bytes
                .iter()
                .all(|byte| byte.is_ascii_digit() || *byte == b'.');
        if plain { unsigned.parse().ok() } else { None }
    })?;
    Some(if unsigned.len() < text.len() {
        -value
    } else {
        value
    })
}

/// Exact powers of ten: every one up to 10^15 is an `f64` without rounding.
const POWERS_OF_TEN: [f64; 16] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
];

/// Reads digits with at most one dot and at most 15 digits in all (`12`, `41.37`, `.5`, `5.`)
/// without the general float parser: the digits make an exact integer and the division by an
/// exact power of ten rounds once, so the result is the very `f64` `str::parse` gives. `None` for
/// anything else.
fn short_decimal(bytes: &[u8]) -> Option<f64> {
    let mut mantissa = 0u64;
    let mut digits = 0usize;
    let mut decimals = None;
    for &byte in bytes {
        match byte {
            b'0'..=b'9' => {
                mantissa = mantissa * 10 + u64::from(byte - b'0');
                digits += 1;
                if let Some(decimals) = &mut decimals {
                    *decimals += 1;
                }
            }
            b'.' if decimals.is_none() => decimals = Some(0),
            _ => return None,
        }
        if digits > 15 {
            return None;
        }
    }
    if digits == 0 {
        return None;
    }
    Some(mantissa as f64 / POWERS_OF_TEN[decimals.unwrap_or(0)])
}

/// Decides which of `,` and `.` is the decimal separator and drops the other.
fn normalise_separators(text: &str) -> Option<String> {
    let last_comma = text.rfind(',');
    let last_dot = text.rfind('.');
    let decimal = match (last_comma, last_dot) {
        (Some(comma), Some(dot)) => Some(if comma > dot { ',' } else { '.' }),
        (Some(comma), None) => {
            // `1,234` is a thousands group; `1,5` or `12,50` is a decimal comma.
            let digits_after = text.len() - comma - 1;
            let groups = text.matches(',').count();
            if digits_after == 3 && groups >= 1 {
                None
            } else if groups == 1 {
                Some(',')
            } else {
                return None;
            }
        }
        (None, Some(_)) => {
            if text.matches('.').count() > 1 {
                None
            } else {
                Some('.')
            }
        }
        (None, None) => None,
    };
    let mut result = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '0'..='9' => result.push(c),
            c if Some(c) == decimal => result.push('.'),
            _ => {}
        }
    }
    Some(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check_date(text: &str, order: DateOrder, expected: &str) {
        let got = match local_date(text, chrono_tz::Europe::Berlin, order) {
            Ok(date) => date.to_string(),
            Err(error) => error,
        };
        assert_eq!(got, expected);
    }

    #[test]
    fn iso_dates_and_local_times_are_taken_as_they_are() {
        check_date("2024-03-01", DateOrder::Auto, "2024-03-01");
        check_date("2024-03-01T23:30:00", DateOrder::Auto, "2024-03-01");
        check_date("2024/03/01 23:59", DateOrder::Auto, "2024-03-01");
    }

    #[test]
    fn instants_with_offsets_are_converted_to_the_tenant_zone() {
        check_date("2024-03-01T23:30:00Z", DateOrder::Auto, "2024-03-02");
        check_date("2024-03-01 18:15:32 -0500", DateOrder::Auto, "2024-03-02");
        check_date(
            "2024-03-01T22:59:59.123+00:00",
            DateOrder::Auto,
            "2024-03-01",
        );
        check_date("2024-03-01 23:30:00 UTC", DateOrder::Auto, "2024-03-02");
    }

    #[test]
    fn slashes_are_month_first_unless_the_first_part_is_a_day() {
        check_date("03/04/2024", DateOrder::Auto, "2024-03-04");
        check_date("3/4/24", DateOrder::Auto, "2024-03-04");
        check_date("25/04/2024", DateOrder::Auto, "2024-04-25");
        check_date("03/04/2024", DateOrder::DayFirst, "2024-04-03");
    }

    #[test]
    fn dots_and_dashes_are_day_first() {
        check_date("01.03.2024", DateOrder::Auto, "2024-03-01");
        check_date("01-03-2024 10:00", DateOrder::Auto, "2024-03-01");
        check_date("01.03.2024", DateOrder::MonthFirst, "2024-01-03");
    }

    #[test]
    fn twelve_hour_clock_times_are_read() {
        check_date("03/04/2024 11:59 PM", DateOrder::Auto, "2024-03-04");
        check_date(
            "03/04/2024 13:00 PM",
            DateOrder::Auto,
            "\"03/04/2024 13:00 PM\" has an unreadable time",
        );
    }

    #[test]
    fn impossible_or_garbled_dates_are_named() {
        check_date(
            "2024-02-30",
            DateOrder::Auto,
            "\"2024-02-30\" is not a date (expected e.g. 2024-03-01, 03/01/2024 or 01.03.2024)",
        );
        check_date(
            "yesterday",
            DateOrder::Auto,
            "\"yesterday\" is not a date (expected e.g. 2024-03-01, 03/01/2024 or 01.03.2024)",
        );
        check_date("", DateOrder::Auto, "date is empty");
        check_date(
            "2024-03-01 10:00 +5",
            DateOrder::Auto,
            "\"2024-03-01 10:00 +5\" has an unreadable time zone offset",
        );
    }

    #[track_caller]
    fn check_number(text: &str, expected: &str) {
        let got = match number(text) {
            Ok(value) => value.to_string(),
            Err(error) => error,
        };
        assert_eq!(got, expected);
    }

    #[test]
    fn plain_and_signed_numbers_are_read() {
        check_number("12", "12");
        check_number(" -3 ", "-3");
        check_number("2.5", "2.5");
    }

    #[test]
    fn money_with_symbols_and_separators_is_read() {
        check_number("$1,234.50", "1234.5");
        check_number("-$3.50", "-3.5");
        check_number("($4.00)", "-4");
        check_number("1.234,50 €", "1234.5");
        check_number("12,50", "12.5");
        check_number("1,234", "1234");
        check_number("EUR 5", "5");
    }

    #[test]
    fn short_decimals_read_as_the_float_parser_reads_them() {
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = |bound: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % bound
        };
        for _ in 0..200_000 {
            let length = 1 + next(17) as usize;
            let dot = next(length as u64 + 2) as usize;
            let text: String = (0..length)
                .map(|at| {
                    if at == dot {
                        '.'
                    } else {
                        char::from(b'0' + next(10) as u8)
                    }
                })
                .collect();
            let parsed: Option<f64> = text.parse().ok();
            if let Some(fast) = short_decimal(text.as_bytes()) {
                assert_eq!(Some(fast.to_bits()), parsed.map(f64::to_bits), "{text}");
            } else {
                assert!(text.bytes().filter(u8::is_ascii_digit).count() > 15 || text == ".");
            }
        }
        assert_eq!(short_decimal(b"1.2.3"), None);
        assert_eq!(short_decimal(b"."), None);
        assert_eq!(short_decimal(b"1e5"), None);
        assert_eq!(
            short_decimal(b"999999999999999"),
            Some(999_999_999_999_999.0)
        );
        assert_eq!(short_decimal(b"9999999999999999"), None);
    }

    #[test]
    fn plain_numbers_read_as_the_general_path_reads_them() {
        check_number(".5", "0.5");
        check_number("-.5", "-0.5");
        check_number("5.", "5");
        check_number("007", "7");
        check_number(".", "\".\" is not a number");
        check_number("-", "\"-\" is not a number");
        check_number("1.2.3", "123");
        check_number("1000000000001", "\"1000000000001\" is not a number");
    }

    #[test]
    fn iso_dates_out_of_range_are_named() {
        check_date(
            "2024-13-01",
            DateOrder::Auto,
            "\"2024-13-01\" is not a date (expected e.g. 2024-03-01, 03/01/2024 or 01.03.2024)",
        );
        check_date(
            "2024-1a-01",
            DateOrder::Auto,
            "\"2024-1a-01\" is not a date (expected e.g. 2024-03-01, 03/01/2024 or 01.03.2024)",
        );
    }

    #[test]
    fn non_numbers_are_named() {
        check_number("abc", "\"abc\" is not a number");
        check_number("", "\"\" is not a number");
        check_number("1-2", "\"1-2\" is not a number");
        check_number("NaN", "\"NaN\" is not a number");
    }
}
