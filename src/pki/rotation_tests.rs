use jiff::{SignedDuration, Timestamp};

use super::*;
use crate::pki::CertInfo;

fn at(seconds: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + seconds).unwrap()
}

fn cert(name: &str, issuer: &str, from: i64, to: i64, hosts: &[&str]) -> CertInfo {
    CertInfo {
        not_before: at(from),
        not_after: at(to),
        hosts: hosts.iter().map(|h| (*h).to_owned()).collect(),
        subject: name.as_bytes().to_vec(),
        issuer: issuer.as_bytes().to_vec(),
        public_key: Vec::new(),
    }
}

fn hosts() -> Vec<String> {
    vec!["svc".to_owned()]
}

/// A CA valid for 3000 s and a serving certificate for 300 s, both from 0.
fn healthy() -> Observed {
    Observed {
        authorities: vec![cert("ca1", "ca1", 0, 3000, &[])],
        ca_key_matches: true,
        serving: Some(cert("leaf", "ca1", 0, 300, &["svc"])),
        serving_key_matches: true,
        ..Observed::default()
    }
}

#[test]
fn nothing_stored_bootstraps() {
    assert_eq!(plan(None, &hosts(), false, at(0)), Step::Bootstrap);
}

#[test]
fn a_ca_without_its_key_bootstraps() {
    let mut o = healthy();
    o.ca_key_matches = false;
    assert_eq!(plan(Some(&o), &hosts(), true, at(10)), Step::Bootstrap);
    o.authorities.clear();
    assert_eq!(plan(Some(&o), &hosts(), true, at(10)), Step::Bootstrap);
}

#[test]
fn healthy_material_waits_for_the_first_renewal() {
    // The serving certificate is due at two thirds of its 300 s.
    assert_eq!(
        plan(Some(&healthy()), &hosts(), true, at(10)),
        Step::Wait(Some(at(200)))
    );
}

#[test]
fn serving_certificate_is_renewed_at_two_thirds_of_its_life() {
    assert_eq!(
        plan(Some(&healthy()), &hosts(), true, at(200)),
        Step::IssueServing
    );
}

#[test]
fn new_hosts_need_a_new_serving_certificate() {
    let more = vec!["svc".to_owned(), "127.0.0.1".to_owned()];
    assert_eq!(
        plan(Some(&healthy()), &more, true, at(10)),
        Step::IssueServing
    );
}

#[test]
fn a_mismatched_or_foreign_serving_pair_is_replaced() {
    let mut o = healthy();
    o.serving_key_matches = false;
    assert_eq!(plan(Some(&o), &hosts(), true, at(10)), Step::IssueServing);
    let mut o = healthy();
    o.serving = Some(cert("leaf", "someone-else", 0, 300, &["svc"]));
    assert_eq!(plan(Some(&o), &hosts(), true, at(10)), Step::IssueServing);
}

#[test]
fn the_ca_rotates_at_two_thirds_of_its_life() {
    let mut o = healthy();
    o.serving = Some(cert("leaf", "ca1", 1900, 2900, &["svc"]));
    assert_eq!(
        plan(Some(&o), &hosts(), true, at(2000)),
        Step::StartCaRotation
    );
}

#[test]
fn an_expired_ca_is_replaced_outright() {
    assert_eq!(
        plan(Some(&healthy()), &hosts(), true, at(3000)),
        Step::Bootstrap
    );
}

#[test]
fn a_new_rotate_annotation_starts_a_rotation_once() {
    let mut o = healthy();
    o.rotate_requested = Some("1".to_owned());
    assert_eq!(
        plan(Some(&o), &hosts(), true, at(10)),
        Step::StartCaRotation
    );
    o.rotated = Some("1".to_owned());
    assert!(matches!(
        plan(Some(&o), &hosts(), true, at(10)),
        Step::Wait(_)
    ));
}

#[test]
fn the_serving_certificate_switches_only_after_a_step_and_once_published() {
    let mut o = healthy();
    o.authorities.insert(0, cert("ca2", "ca2", 100, 3100, &[]));
    o.serve_new_after = Some(at(130));
    assert_eq!(
        plan(Some(&o), &hosts(), true, at(110)),
        Step::Wait(Some(at(130)))
    );
    assert_eq!(plan(Some(&o), &hosts(), false, at(131)), Step::Wait(None));
    assert_eq!(plan(Some(&o), &hosts(), true, at(131)), Step::IssueServing);
}

#[test]
fn the_previous_ca_leaves_the_bundle_a_step_after_the_switch() {
    let mut o = healthy();
    o.authorities.insert(0, cert("ca2", "ca2", 100, 3100, &[]));
    o.serving = Some(cert("leaf2", "ca2", 130, 430, &["svc"]));
    o.drop_previous_after = Some(at(160));
    assert_eq!(
        plan(Some(&o), &hosts(), true, at(150)),
        Step::Wait(Some(at(160)))
    );
    assert_eq!(plan(Some(&o), &hosts(), true, at(160)), Step::DropPrevious);
}

#[test]
fn a_leftover_previous_ca_is_dropped_when_not_needed() {
    let mut o = healthy();
    o.authorities.push(cert("ca0", "ca0", -100, 2900, &[]));
    assert_eq!(plan(Some(&o), &hosts(), true, at(10)), Step::DropPrevious);
}

#[test]
fn after_step_adds_the_step() {
    let settings = Settings {
        step: std::time::Duration::from_secs(7),
        ..Settings::default()
    };
    assert_eq!(
        after_step(at(0), &settings),
        at(0) + SignedDuration::from_secs(7)
    );
}
