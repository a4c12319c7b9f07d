//! Keeping a change record within [`MAX_CHANGE_BYTES`]: fields are kept in
//! order while they fit; a field too big for the room left has its long text
//! cut at a line boundary (starting a few lines before the first line that
//! differs), and the rest is dropped. Every cut is counted, so the record
//! says how many lines are not shown. The digest still binds the whole change.

use serde_json::Value;

use crate::crd::{Change, FieldChange, MAX_CHANGE_BYTES, Truncation};

/// Room kept for the summary, the other parts of the record and the JSON
/// around the fields.
const RESERVED_BYTES: usize = 8 * 1024;
/// A field is cut rather than dropped only when at least this much room is left.
const MIN_ROOM: usize = 512;
/// The most fields a record lists (the CRD's bound).
const MAX_FIELDS: usize = 4096;
/// Lines of context kept before the first line that differs.
const CONTEXT_LINES: usize = 3;

/// Cuts `change` to fit, and records what was cut in `change.truncated`.
pub fn fit(change: &mut Change) {
    let budget = MAX_CHANGE_BYTES - RESERVED_BYTES;
    if size(&change.fields) <= budget && change.fields.len() <= MAX_FIELDS {
        return;
    }
    let mut used = 2;
    let mut cut = Truncation::default();
    let mut kept = Vec::new();
    for mut field in std::mem::take(&mut change.fields) {
        let room = match kept.len() {
            n if n >= MAX_FIELDS => 0,
            _ => budget.saturating_sub(used),
        };
        let mut need = size(&field) + 1;
        // JSON escapes make text longer than it is: aim lower until it fits.
        let mut aim = room;
        while need > room && room >= MIN_ROOM && aim >= MIN_ROOM / 2 {
            shrink(&mut field, aim);
            need = size(&field) + 1;
            aim = aim * 3 / 4;
        }
        if need <= room {
            used += need;
            cut.omitted_lines += field.omitted_lines;
            kept.push(field);
        } else {
            cut.omitted_fields += 1;
            cut.omitted_lines +=
                yaml_lines(field.before.as_ref()) + yaml_lines(field.after.as_ref());
        }
    }
    change.fields = kept;
    change.truncated = Some(cut);
}

fn size<T: serde::Serialize>(value: &T) -> usize {
    serde_json::to_vec(value).map_or(usize::MAX, |v| v.len())
}

fn yaml_lines(value: Option<&Value>) -> u64 {
    value
        .and_then(|v| serde_yaml_ng::to_string(v).ok())
        .map_or(0, |y| y.lines().count() as u64)
}

/// Cuts the field's long text so that it takes about `room` bytes.
fn shrink(field: &mut FieldChange, room: usize) {
    let overhead = field.path.len() + 96;
    let each = room.saturating_sub(overhead) / 2;
    // Both sides text: show both from a little before where they start to differ.
    let skip = match (&field.before, &field.after) {
        (Some(Value::String(b)), Some(Value::String(a))) => {
            first_difference(b, a).saturating_sub(CONTEXT_LINES)
        }
        _ => 0,
    };
    let mut omitted = 0;
    for side in [&mut field.before, &mut field.after].into_iter().flatten() {
        let mut left = each;
        omitted += cut_value(side, skip, &mut left);
    }
    field.omitted_lines += omitted;
}

/// The index of the first line that differs.
fn first_difference(a: &str, b: &str) -> usize {
    a.lines().zip(b.lines()).take_while(|(x, y)| x == y).count()
}

/// Cuts the strings in `value` to what `left` bytes allow, in document
/// order; returns how many lines were cut.
fn cut_value(value: &mut Value, skip: usize, left: &mut usize) -> u64 {
    match value {
        Value::String(s) => {
            let (kept, omitted) = window(s, skip, *left);
            *left = left.saturating_sub(kept.len() + 2);
            *s = kept;
            omitted
        }
        Value::Array(items) => items.iter_mut().map(|v| cut_value(v, 0, left)).sum(),
        Value::Object(map) => map
            .iter_mut()
            .map(|(k, v)| {
                *left = left.saturating_sub(k.len() + 4);
                cut_value(v, 0, left)
            })
            .sum(),
        scalar => {
            *left = left.saturating_sub(scalar.to_string().len());
            0
        }
    }
}

/// At most `max` bytes of whole lines of `text`, starting at line `skip`, and
/// how many lines were left out. A first line longer than `max` is cut at a
/// character boundary and counted as left out.
fn window(text: &str, skip: usize, max: usize) -> (String, u64) {
    let total = text.lines().count() as u64;
    let mut kept = String::new();
    let mut shown = 0u64;
    for line in text.split_inclusive('\n').skip(skip) {
        if kept.len() + line.len() > max {
            if shown == 0 {
                let end = (0..=max.min(line.len()))
                    .rev()
                    .find(|i| line.is_char_boundary(*i))
                    .unwrap_or(0);
                kept.push_str(&line[..end]);
            }
            break;
        }
        kept.push_str(line);
        shown += 1;
    }
    (kept, total.saturating_sub(shown))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::change::field;

    fn big_text(lines: usize, changed_at: usize) -> (String, String) {
        let line = |i: usize, v: &str| format!("setting_{i:06} = {v} # padding padding padding\n");
        let before: String = (0..lines).map(|i| line(i, "old")).collect();
        let after: String = (0..lines)
            .map(|i| line(i, if i == changed_at { "NEW" } else { "old" }))
            .collect();
        (before, after)
    }

    #[test]
    fn at_most_the_crd_bound_of_fields_is_listed() {
        let mut change = Change {
            fields: (0..5000)
                .map(|i| field(&format!("data.k{i}"), None, Some(json!(1))))
                .collect(),
            ..Change::default()
        };
        fit(&mut change);
        let omitted = change.truncated.unwrap().omitted_fields;
        assert!(change.fields.len() <= MAX_FIELDS);
        assert_eq!(change.fields.len() as u64 + omitted, 5000);
    }

    #[test]
    fn small_changes_are_kept_whole() {
        let mut change = Change {
            fields: vec![field("data.a", Some(json!("1")), Some(json!("2")))],
            ..Change::default()
        };
        let before = change.clone();
        fit(&mut change);
        assert_eq!(change, before);
    }

    #[test]
    fn a_huge_text_change_is_cut_near_the_difference_and_counted() {
        let (before, after) = big_text(20_000, 15_000);
        let mut change = Change {
            fields: vec![field("data.big", Some(json!(before)), Some(json!(after)))],
            ..Change::default()
        };
        fit(&mut change);
        assert!(size(&change) < MAX_CHANGE_BYTES, "{}", size(&change));
        let kept = &change.fields[0];
        let shown_after = kept.after.as_ref().unwrap().as_str().unwrap();
        assert!(
            shown_after.starts_with("setting_014997"),
            "{}",
            &shown_after[..40]
        );
        assert!(shown_after.contains("NEW"));
        let cut = change.truncated.unwrap();
        assert!(cut.omitted_lines > 30_000, "{cut:?}");
        assert_eq!(cut.omitted_fields, 0);
    }

    #[test]
    fn fields_beyond_the_room_are_dropped_and_counted() {
        let long = "x".repeat(20_000);
        let mut change = Change {
            fields: (0..10)
                .map(|i| field(&format!("data.k{i}"), None, Some(json!(long))))
                .collect(),
            ..Change::default()
        };
        fit(&mut change);
        assert!(size(&change) < MAX_CHANGE_BYTES);
        let cut = change.truncated.unwrap();
        let whole = change
            .fields
            .iter()
            .filter(|f| f.omitted_lines == 0)
            .count();
        let shortened = change.fields.len() - whole;
        assert!(
            whole < 10 && shortened as u64 + cut.omitted_fields > 0,
            "{cut:?}"
        );
        assert_eq!(
            change.fields.len() as u64 + cut.omitted_fields,
            10,
            "every field is either kept or counted"
        );
        assert!(cut.omitted_lines >= shortened as u64 + cut.omitted_fields);
    }
}
