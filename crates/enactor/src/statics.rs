//! Who owns which records of a zone, and so what the planner starts from.
//!
//! Every record set of a zone has exactly one owner:
//! * an **endpoint** owns the `A`, `AAAA` and `CNAME` sets at its name: the planner writes
//!   them from health, whatever any other source says;
//! * the **zone file and the operator** own every other set: the planner never changes them,
//!   it carries them over from the base version.
//!
//! [`StaticLayer`] holds the second kind for one zone: the records the planner starts from.
//! It is the zone file's records, then every change a version made by anyone but the planner
//! (`apply`, rollback, a guarded import) brought to sets the endpoints do not own. So an
//! operator's fix to `www` stays through later plans and a thaw.
//!
//! The zone file is merged, not reloaded over the top:
//! * **reload (SIGHUP)**: the sets the file changed since it was last read (old file against
//!   new file) replace those sets; operator changes to sets the file did not change stay;
//! * **start**: when the file's content is what the store recorded as the zone's source
//!   last time, the static records are the active version's (operator changes kept, nothing
//!   re-imported); when the file changed while the node was down (or nothing was recorded),
//!   the file's records are the static records, as at a first start.
//!
//! Pure: every method is a function of its inputs; the control loop does the reading and
//! records the source in the store once a version carrying it is active.

use model::endpoint::is_endpoint_owned;
use model::{Generation, Name, RecordType, ZoneContent};

/// The static records of one zone and where they came from.
#[derive(Debug, Clone)]
pub struct StaticLayer {
    /// The zone file content last merged (compared by identity with the config's).
    file: ZoneContent,
    /// [`source_of`] `file`.
    source: String,
    /// What the planner starts from.
    records: ZoneContent,
    /// The active version `records` was last brought in line with, and its content.
    seen: Option<(Generation, ZoneContent)>,
    /// `source` is not recorded in the store yet.
    unrecorded: bool,
}

/// What the store records as a zone's source: the zone file's content hash (serial left
/// out: the served serial is the store's business).
pub fn source_of(file: &ZoneContent) -> String {
    format!("zone file content {}", file.with_serial(0).hash())
}

/// How a layer started, for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Start {
    /// No active version: the file's records.
    FirstLoad,
    /// The file is the recorded source: the active version's records.
    Unchanged,
    /// The file differs from the recorded source (or none was recorded): the file's records
    /// replace the static records.
    FileChanged { recorded: Option<String> },
}

impl StaticLayer {
    /// The layer at start: `file` from the config, the zone's active version and the source
    /// the store recorded.
    pub fn start(
        file: &ZoneContent,
        active: Option<(Generation, &ZoneContent)>,
        recorded: Option<&str>,
    ) -> (StaticLayer, Start) {
        let source = source_of(file);
        let layer = |records: ZoneContent, unrecorded: bool| StaticLayer {
            file: file.clone(),
            source: source.clone(),
            records,
            seen: active.map(|(generation, content)| (generation, content.clone())),
            unrecorded,
        };
        match active {
            None => (layer(file.clone(), true), Start::FirstLoad),
            Some((_, content)) if recorded == Some(source.as_str()) => {
                (layer(content.clone(), false), Start::Unchanged)
            }
            Some(_) => (
                layer(file.clone(), true),
                Start::FileChanged {
                    recorded: recorded.map(str::to_string),
                },
            ),
        }
    }

    /// Whether the layer has seen an active version (else the next one it sees needs its
    /// provenance, see [`StaticLayer::follow_active`]).
    pub fn has_seen(&self) -> bool {
        self.seen.is_some()
    }

    /// The records the planner starts from.
    pub fn records(&self) -> &ZoneContent {
        &self.records
    }

    /// The source to record in the store, while it is not recorded yet.
    pub fn unrecorded_source(&self) -> Option<&str> {
        self.unrecorded.then_some(self.source.as_str())
    }

    /// The store recorded the source.
    pub fn recorded(&mut self) {
        self.unrecorded = false;
    }

    /// Merges a zone file read again: the sets that differ between the file merged last
    /// and `file` take `file`'s value. Returns how many sets changed.
    pub fn merge_file(&mut self, file: &ZoneContent) -> usize {
        if self.file.is_same_as(file) {
            return 0;
        }
        let changed = self.file.changed_sets(file);
        let count = changed.len();
        for set in changed {
            match set.new {
                Some(new) => self.records.put_rrset(new.clone()),
                None => {
                    let (name, rtype) = (&set.key.name, set.key.rtype);
                    self.records.remove_rrset(name, rtype);
                }
            }
        }
        let source = source_of(file);
        if source != self.source {
            self.source = source;
            self.unrecorded = true;
        }
        self.file = file.clone();
        count
    }

    /// Brings the records in line with the active version (`generation`, `content`, made by
    /// the planner when `by_planner`): every set the versions since the last one seen
    /// changed, that no endpoint in `endpoints` owns, is taken over (an operator, a rollback
    /// or an import made it). Sets the records
    /// already hold are left alone, so the planner's own versions change nothing here.
    /// Returns how many sets were taken over.
    pub fn follow_active(
        &mut self,
        generation: Generation,
        content: &ZoneContent,
        endpoints: &[Name],
        by_planner: bool,
    ) -> usize {
        // A layer started before the zone had a version has seen none. When the first
        // version it sees is the planner's, it is the baseline; when someone else made it
        // (an operator change applied before the first round that saw an active version),
        // it is compared with the records the layer holds (the file): the planner changes
        // only endpoint sets, so every other set that differs is that person's change.
        // (Found in CI: a change applied right after the first version and a reload before
        // the next tick lost the change.)
        let before = match &self.seen {
            Some((seen, _)) if *seen == generation => return 0,
            Some((_, before)) => before.clone(),
            None if by_planner => {
                self.seen = Some((generation, content.clone()));
                return 0;
            }
            None => self.records.clone(),
        };
        let mut taken = 0;
        for set in before.changed_sets(content) {
            let (name, rtype) = (&set.key.name, set.key.rtype);
            if is_endpoint_owned(endpoints, name, rtype) {
                continue;
            }
            let held = self.records.get(name, rtype);
            if rtype == RecordType::SOA {
                if let Some(new) = set.new {
                    if held.is_some_and(|held| same_apart_from_serial(held, new)) {
                        continue;
                    }
                }
            }
            if held == set.new {
                continue;
            }
            match set.new {
                Some(new) => self.records.put_rrset(new.clone()),
                None => {
                    self.records.remove_rrset(name, rtype);
                }
            }
            taken += 1;
        }
        self.seen = Some((generation, content.clone()));
        taken
    }
}

/// Two SOA sets that differ at most in their serials.
fn same_apart_from_serial(a: &model::RecordSet, b: &model::RecordSet) -> bool {
    let without_serial = |set: &model::RecordSet| -> Vec<model::RData> {
        set.rdatas
            .iter()
            .map(|rdata| match rdata {
                model::RData::SOA(soa) => {
                    let mut soa = soa.clone();
                    soa.serial = 0;
                    model::RData::SOA(soa)
                }
                other => other.clone(),
            })
            .collect()
    };
    a.ttl == b.ttl && without_serial(a) == without_serial(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::{RData, Record};
    use std::net::Ipv4Addr;

    fn name(text: &str) -> Name {
        Name::from_ascii(text).unwrap()
    }

    fn zone(serial: u32, extra: &[(&str, [u8; 4])]) -> ZoneContent {
        let origin = name("example.test.");
        let mut records = vec![
            Record::from_rdata(
                origin.clone(),
                300,
                RData::SOA(model::rdata::SOA::new(
                    name("ns.example.test."),
                    name("hostmaster.example.test."),
                    serial,
                    3600,
                    600,
                    86400,
                    30,
                )),
            ),
            Record::from_rdata(
                origin.clone(),
                300,
                RData::NS(model::rdata::NS(name("ns.example.test."))),
            ),
        ];
        for (owner, address) in extra {
            records.push(Record::from_rdata(
                name(owner),
                300,
                RData::A(model::rdata::A(Ipv4Addr::from(*address))),
            ));
        }
        ZoneContent::from_records(origin, records).unwrap()
    }

    fn addresses(content: &ZoneContent, owner: &str) -> Vec<String> {
        content
            .get(&name(owner), RecordType::A)
            .map(|set| set.rdatas.iter().map(ToString::to_string).collect())
            .unwrap_or_default()
    }

    const WWW: &str = "www.example.test.";
    const APP: &str = "app.example.test.";

    /// A version an operator made: a second `www` address (and the endpoint's own set).
    fn operator_fix() -> ZoneContent {
        zone(
            6,
            &[
                (WWW, [192, 0, 2, 10]),
                (WWW, [192, 0, 2, 11]),
                (APP, [10, 0, 0, 9]),
            ],
        )
    }

    #[test]
    fn an_operator_change_to_a_static_set_is_taken_over_and_an_endpoint_set_is_not() {
        let file = zone(1, &[(WWW, [192, 0, 2, 10])]);
        let (mut layer, start) = StaticLayer::start(&file, None, None);
        assert_eq!(start, Start::FirstLoad);
        let planned = zone(5, &[(WWW, [192, 0, 2, 10]), (APP, [10, 0, 0, 1])]);
        assert_eq!(
            layer.follow_active(Generation(1), &planned, &[name(APP)], true),
            0
        );
        assert_eq!(
            layer.follow_active(Generation(2), &operator_fix(), &[name(APP)], false),
            1
        );
        assert_eq!(
            addresses(layer.records(), WWW),
            ["192.0.2.10", "192.0.2.11"]
        );
        assert!(addresses(layer.records(), APP).is_empty());
    }

    #[test]
    fn an_operator_change_in_the_first_version_the_layer_sees_is_taken_over() {
        let file = zone(1, &[(WWW, [192, 0, 2, 10])]);
        let (mut layer, start) = StaticLayer::start(&file, None, None);
        assert_eq!(start, Start::FirstLoad);
        // The planner's first version and an operator's fix were both made before the
        // layer's next round: it first sees the fix.
        assert_eq!(
            layer.follow_active(Generation(2), &operator_fix(), &[name(APP)], false),
            1
        );
        assert_eq!(
            addresses(layer.records(), WWW),
            ["192.0.2.10", "192.0.2.11"]
        );
        assert!(
            addresses(layer.records(), APP).is_empty(),
            "endpoint sets are not taken"
        );
        // The planner's own first version (file and endpoints only) takes nothing.
        let (mut fresh, _) = StaticLayer::start(&file, None, None);
        let planned = zone(5, &[(WWW, [192, 0, 2, 10]), (APP, [10, 0, 0, 1])]);
        assert_eq!(
            fresh.follow_active(Generation(1), &planned, &[name(APP)], true),
            0
        );
    }

    #[test]
    fn the_planners_own_versions_leave_the_records_untouched() {
        let file = zone(1, &[(WWW, [192, 0, 2, 10])]);
        let (mut layer, _) = StaticLayer::start(&file, None, None);
        let before = layer.records().clone();
        let mut planned = file.with_serial(7);
        for (generation, last) in [(1, 1), (2, 2), (3, 3)] {
            planned.put_rrset(
                model::endpoint::address_record_sets(
                    &name(APP),
                    5,
                    &[std::net::IpAddr::from([10, 0, 0, last])].into(),
                )
                .remove(0),
            );
            planned = planned.with_serial(7 + last as u32);
            assert_eq!(
                layer.follow_active(Generation(generation), &planned, &[name(APP)], true),
                0
            );
        }
        assert!(layer.records().is_same_as(&before));
    }

    #[test]
    fn a_reloaded_file_replaces_the_sets_it_changed_and_keeps_operator_changes() {
        let file = zone(
            1,
            &[
                (WWW, [192, 0, 2, 10]),
                ("mail.example.test.", [192, 0, 2, 25]),
            ],
        );
        let (mut layer, _) = StaticLayer::start(&file, None, None);
        layer.follow_active(Generation(1), &file, &[], true);
        let fixed = zone(
            2,
            &[
                (WWW, [192, 0, 2, 10]),
                (WWW, [192, 0, 2, 11]),
                ("mail.example.test.", [192, 0, 2, 25]),
            ],
        );
        layer.follow_active(Generation(2), &fixed, &[], false);
        layer.recorded();
        let edited = zone(
            3,
            &[
                (WWW, [192, 0, 2, 10]),
                ("mail.example.test.", [192, 0, 2, 26]),
            ],
        );
        assert_eq!(layer.merge_file(&edited), 2, "the SOA serial and mail");
        assert_eq!(
            addresses(layer.records(), "mail.example.test."),
            ["192.0.2.26"]
        );
        assert_eq!(
            addresses(layer.records(), WWW),
            ["192.0.2.10", "192.0.2.11"],
            "the operator's fix to a set the file did not change stays"
        );
        assert_eq!(layer.unrecorded_source(), Some(source_of(&edited).as_str()));
    }

    #[test]
    fn at_start_an_unchanged_file_keeps_the_active_records_and_a_changed_one_replaces_them() {
        let file = zone(1, &[(WWW, [192, 0, 2, 10])]);
        let active = zone(9, &[(WWW, [192, 0, 2, 10]), (WWW, [192, 0, 2, 11])]);
        let source = source_of(&file);
        let (kept, start) =
            StaticLayer::start(&file, Some((Generation(4), &active)), Some(&source));
        assert_eq!(start, Start::Unchanged);
        assert_eq!(addresses(kept.records(), WWW), ["192.0.2.10", "192.0.2.11"]);
        assert_eq!(kept.unrecorded_source(), None);

        let edited = zone(2, &[(WWW, [192, 0, 2, 12])]);
        let (replaced, start) =
            StaticLayer::start(&edited, Some((Generation(4), &active)), Some(&source));
        assert_eq!(
            start,
            Start::FileChanged {
                recorded: Some(source.clone())
            }
        );
        assert_eq!(addresses(replaced.records(), WWW), ["192.0.2.12"]);
        assert!(replaced.unrecorded_source().is_some());

        let serial_only = file.with_serial(77);
        let (_, start) =
            StaticLayer::start(&serial_only, Some((Generation(4), &active)), Some(&source));
        assert_eq!(
            start,
            Start::Unchanged,
            "the serial is the store's business"
        );
    }
}
