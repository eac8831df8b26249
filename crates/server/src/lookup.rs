//! The answer to one question from one zone snapshot (RFC 1034 §4.3.2), pure.
//!
//! Section contents and their order follow NSD 4.6, the reference this server is compared
//! against:
//! * a positive answer carries the apex NS set in authority (unless the answer is that set)
//!   and the A then AAAA sets of the in-zone NS/MX/SRV targets in additional;
//! * a CNAME chain that leaves the zone, loops or reaches the chain bound ends there, with
//!   the CNAMEs collected, NOERROR and nothing in authority;
//! * ANY (RFC 8482 §4.1) returns one RRset and nothing in authority or additional. NSD 4.6
//!   picks the first of A, AAAA, SOA, MX, PTR in zone-file order, else the first other set;
//!   we have no file order, so we prefer SOA, A, AAAA, MX, PTR in that order, else the
//!   lowest other type (DNSKEY, RRSIG, NSEC last);
//! * DS at a cut is answered by the parent side without authority NS;
//! * below a DNAME (RFC 6672), the DNAME and a CNAME synthesized from the query name (TTL of
//!   the DNAME) are answered and followed like a CNAME; a substitution too long for a name
//!   is YXDOMAIN with the DNAME. Data below a DNAME is occluded.

use model::{Name, RData, Record, RecordType};

use crate::zone::{Node, ZoneData};
use hickory_proto::op::ResponseCode;

/// What kind of answer a lookup produced; decides what truncation may drop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerKind {
    /// Data in answer; authority (apex NS) is optional.
    Data,
    /// The name exists without data of the type: SOA in authority.
    NoData,
    /// The name does not exist: SOA in authority.
    NxDomain,
    /// At or below a zone cut: child NS in authority, glue in additional.
    Referral,
    /// A CNAME chain ended early (left the zone, looped, or hit the bound).
    ChainEnd,
}

/// The sections of an answer, each a list of complete RRsets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lookup {
    pub rcode: ResponseCode,
    pub authoritative: bool,
    pub kind: AnswerKind,
    pub answers: Vec<Vec<Record>>,
    pub authorities: Vec<Vec<Record>>,
    pub additionals: Vec<Vec<Record>>,
}

/// One step of resolution at one name.
enum Step {
    Data(Vec<Record>),
    Cname(Box<Record>, Name),
    /// The DNAME above the name, the CNAME synthesized from it, and its target.
    Dname(Box<Record>, Box<Record>, Name),
    /// The substitution does not fit in a name (RFC 6672 §2.2).
    TooLong(Box<Record>),
    NoData,
    NxDomain,
    Referral(Name),
}

/// Answers `qname`/`qtype` from `zone`. `qname` must be at or below the zone's origin;
/// `cname_chain_length` bounds the CNAMEs followed.
pub fn lookup(
    zone: &ZoneData,
    qname: &Name,
    qtype: RecordType,
    cname_chain_length: usize,
) -> Lookup {
    let mut out = Lookup {
        rcode: ResponseCode::NoError,
        authoritative: true,
        kind: AnswerKind::Data,
        answers: Vec::new(),
        authorities: Vec::new(),
        additionals: Vec::new(),
    };
    let mut name = qname.clone();
    let mut visited: Vec<Name> = vec![qname.clone()];
    loop {
        match step(zone, &name, qtype) {
            Step::Data(records) => {
                out.answers.push(records);
                out.kind = AnswerKind::Data;
                break;
            }
            Step::Cname(record, target) => {
                out.answers.push(vec![*record]);
                // Every CNAME taken counts; a loop or a chain beyond the bound stops cleanly.
                let chain_full = out.answers.len() >= cname_chain_length;
                if !zone.contains(&target) || visited.contains(&target) || chain_full {
                    out.kind = AnswerKind::ChainEnd;
                    return out;
                }
                visited.push(target.clone());
                name = target;
            }
            Step::Dname(dname, cname, target) => {
                out.answers.push(vec![*dname]);
                out.answers.push(vec![*cname]);
                // Asked for the CNAME: the synthesized one is the answer (as NSD, nothing
                // in authority).
                let chain_full = out.answers.len() >= cname_chain_length;
                if qtype == RecordType::CNAME
                    || !zone.contains(&target)
                    || visited.contains(&target)
                    || chain_full
                {
                    out.kind = AnswerKind::ChainEnd;
                    return out;
                }
                visited.push(target.clone());
                name = target;
            }
            Step::TooLong(dname) => {
                out.answers.push(vec![*dname]);
                out.kind = AnswerKind::ChainEnd;
                out.rcode = ResponseCode::YXDomain;
                return out;
            }
            Step::NoData => {
                out.kind = AnswerKind::NoData;
                out.authorities.push(vec![zone.negative_soa().clone()]);
                return out;
            }
            Step::NxDomain => {
                out.kind = AnswerKind::NxDomain;
                out.rcode = ResponseCode::NXDomain;
                out.authorities.push(vec![zone.negative_soa().clone()]);
                return out;
            }
            Step::Referral(cut) => {
                out.kind = AnswerKind::Referral;
                // A referral is not authoritative; after an in-zone CNAME the answer is.
                out.authoritative = !out.answers.is_empty();
                let ns = zone
                    .node(&cut)
                    .and_then(|node| node.rrset(RecordType::NS))
                    .map(<[Record]>::to_vec)
                    .unwrap_or_default();
                out.additionals = additional_addresses(zone, ns.iter(), true);
                out.authorities.push(ns);
                return out;
            }
        }
    }
    // Positive answer: ANY stays minimal; otherwise apex NS and additional addresses.
    let ds_at_cut = qtype == RecordType::DS && zone.cut_above(&name).is_some();
    if qtype == RecordType::ANY || ds_at_cut {
        return out;
    }
    let apex_ns = zone
        .node(zone.origin())
        .and_then(|apex| apex.rrset(RecordType::NS))
        .map(<[Record]>::to_vec)
        .unwrap_or_default();
    let answer_is_apex_ns = qtype == RecordType::NS && name == *zone.origin();
    let mut targets: Vec<&Record> = out.answers.iter().flatten().collect();
    if !answer_is_apex_ns {
        targets.extend(apex_ns.iter());
    }
    out.additionals = additional_addresses(zone, targets.into_iter(), false);
    if !answer_is_apex_ns && !apex_ns.is_empty() {
        out.authorities.push(apex_ns);
    }
    out
}

/// Resolution at one name: cuts first, then the node, then the wildcard (RFC 4592).
fn step(zone: &ZoneData, name: &Name, qtype: RecordType) -> Step {
    if let Some(dname) = zone.dname_above(name) {
        // A cut above the DNAME comes first on the way down from the apex.
        let cut_first = zone
            .cut_above(name)
            .is_some_and(|(cut, _)| cut.num_labels() < dname.name.num_labels());
        if !cut_first {
            return substitute(dname, name);
        }
    }
    if let Some((cut, node)) = zone.cut_above(name) {
        // DS at the cut belongs to the parent side (RFC 4035 §2.4); all else is a referral.
        let at_cut = cut == crate::zone::key(name);
        if !(at_cut && qtype == RecordType::DS) {
            return Step::Referral(cut);
        }
        return at_node(node, name, qtype, false);
    }
    if let Some(node) = zone.node(name) {
        return at_node(node, name, qtype, false);
    }
    // Closest encloser: the nearest existing ancestor (empty non-terminals exist too).
    let mut encloser = name.base_name();
    while zone.node(&encloser).is_none() && encloser.num_labels() > zone.origin().num_labels() {
        encloser = encloser.base_name();
    }
    let wildcard = encloser.prepend_label("*").ok();
    match wildcard.as_ref().and_then(|w| zone.node(w)) {
        Some(node) => at_node(node, name, qtype, true),
        None => Step::NxDomain,
    }
}

/// The DNAME's answer for `name` below its owner: the query name's labels above the owner
/// put in front of the DNAME's target, as a synthesized CNAME (RFC 6672 §2.2, §3.2).
fn substitute(dname: &Record, name: &Name) -> Step {
    // The library has no DNAME type: its data is the target's uncompressed wire name.
    let target = match &dname.data {
        RData::Unknown { rdata, .. } => {
            let mut decoder = hickory_proto::serialize::binary::BinDecoder::new(&rdata.anything);
            <Name as hickory_proto::serialize::binary::BinDecodable>::read(&mut decoder)
        }
        _ => return Step::NoData,
    };
    let Ok(target) = target else {
        return Step::NoData;
    };
    // The query name's own labels in lower case, as NSD writes them (the rest takes the
    // question's case through name compression).
    let prefix = usize::from(name.num_labels() - dname.name.num_labels());
    let lower = name.to_lowercase();
    let synthesized = Name::from_labels(lower.iter().take(prefix))
        .and_then(|prefix| prefix.append_domain(&target));
    match synthesized {
        Ok(mut target) => {
            target.set_fqdn(true);
            let cname = Record::from_rdata(
                name.clone(),
                dname.ttl,
                RData::CNAME(model::rdata::CNAME(target.clone())),
            );
            Step::Dname(Box::new(dname.clone()), Box::new(cname), target)
        }
        Err(_) => Step::TooLong(Box::new(dname.clone())),
    }
}

/// The answer at an existing node; `synthesized` renames records to `owner` (wildcards).
fn at_node(node: &Node, owner: &Name, qtype: RecordType, synthesized: bool) -> Step {
    let rename = |records: &[Record]| -> Vec<Record> {
        records
            .iter()
            .map(|record| {
                let mut record = record.clone();
                if synthesized {
                    record.name = owner.clone();
                }
                record
            })
            .collect()
    };
    if qtype == RecordType::ANY {
        return match any_choice(node) {
            Some(records) => Step::Data(rename(records)),
            None => Step::NoData,
        };
    }
    if let Some(records) = node.rrset(qtype) {
        return Step::Data(rename(records));
    }
    if let Some(cname) = node.rrset(RecordType::CNAME).and_then(|r| r.first()) {
        if let RData::CNAME(target) = &cname.data {
            let target = target.0.clone();
            let mut record = cname.clone();
            if synthesized {
                record.name = owner.clone();
            }
            return Step::Cname(Box::new(record), target);
        }
    }
    Step::NoData
}

/// One RRset for ANY (RFC 8482 §4.1), chosen as described in the module documentation.
fn any_choice(node: &Node) -> Option<&[Record]> {
    const PREFERRED: [RecordType; 5] = [
        RecordType::SOA,
        RecordType::A,
        RecordType::AAAA,
        RecordType::MX,
        RecordType::PTR,
    ];
    const LAST: [RecordType; 3] = [RecordType::DNSKEY, RecordType::RRSIG, RecordType::NSEC];
    PREFERRED
        .iter()
        .find_map(|t| node.rrset(*t))
        .or_else(|| {
            node.rrsets
                .iter()
                .find(|(t, _)| !LAST.contains(t) && *t != RecordType::NSEC3PARAM)
                .map(|(_, r)| r.as_slice())
        })
        .or_else(|| LAST.iter().find_map(|t| node.rrset(*t)))
}

/// A then AAAA sets of the in-zone targets of NS, MX and SRV records, each target once.
/// `glue` allows data at or below a cut (referrals); otherwise occluded data is skipped.
fn additional_addresses<'a>(
    zone: &ZoneData,
    records: impl Iterator<Item = &'a Record>,
    glue: bool,
) -> Vec<Vec<Record>> {
    let mut targets: Vec<Name> = Vec::new();
    for record in records {
        let target = match &record.data {
            RData::NS(ns) => &ns.0,
            RData::MX(mx) => &mx.exchange,
            RData::SRV(srv) => &srv.target,
            _ => continue,
        };
        if zone.contains(target)
            && !targets.contains(target)
            && (glue || zone.cut_above(target).is_none())
        {
            targets.push(target.clone());
        }
    }
    let mut out = Vec::new();
    for rtype in [RecordType::A, RecordType::AAAA] {
        for target in &targets {
            if let Some(records) = zone.node(target).and_then(|node| node.rrset(rtype)) {
                out.push(records.to_vec());
            }
        }
    }
    out
}

#[cfg(test)]
#[path = "../tests/common/mod.rs"]
pub(crate) mod common;

#[cfg(test)]
mod tests {
    use super::common::{example_zone, name};
    use super::*;
    use crate::snapshot::ZoneSnapshot;
    use model::Generation;

    fn ask(qname: &str, qtype: RecordType) -> Lookup {
        let zone = ZoneSnapshot::build(&example_zone(7), Generation(1));
        lookup(&zone, &name(qname), qtype, 8)
    }

    fn types(section: &[Vec<Record>]) -> Vec<RecordType> {
        section.iter().map(|set| set[0].record_type()).collect()
    }

    #[test]
    fn rfc1034_4_3_2_positive_answer_is_authoritative_with_apex_ns_and_addresses() {
        let answer = ask("www.example.test.", RecordType::A);
        assert_eq!(answer.rcode, ResponseCode::NoError);
        assert!(answer.authoritative);
        assert_eq!(answer.answers[0].len(), 2);
        assert_eq!(types(&answer.authorities), vec![RecordType::NS]);
        assert_eq!(
            types(&answer.additionals),
            vec![RecordType::A, RecordType::A, RecordType::AAAA]
        );
    }

    #[test]
    fn rfc2308_nxdomain_carries_soa_with_negative_ttl() {
        let answer = ask("nope.example.test.", RecordType::A);
        assert_eq!(answer.rcode, ResponseCode::NXDomain);
        assert!(answer.authoritative && answer.answers.is_empty());
        let soa = &answer.authorities[0][0];
        assert_eq!(soa.record_type(), RecordType::SOA);
        assert_eq!(soa.ttl, 300, "min(SOA TTL 3600, MINIMUM 300)");
    }

    #[test]
    fn rfc2308_nodata_answer_carries_soa_in_authority() {
        let answer = ask("www.example.test.", RecordType::MX);
        assert_eq!(answer.rcode, ResponseCode::NoError);
        assert_eq!(answer.kind, AnswerKind::NoData);
        assert_eq!(types(&answer.authorities), vec![RecordType::SOA]);
    }

    #[test]
    fn rfc8020_empty_non_terminal_is_nodata_not_nxdomain() {
        let answer = ask("c.example.test.", RecordType::TXT);
        assert_eq!(answer.rcode, ResponseCode::NoError);
        assert_eq!(answer.kind, AnswerKind::NoData);
        assert_eq!(
            ask("b.example.test.", RecordType::A).rcode,
            ResponseCode::NXDomain
        );
    }

    #[test]
    fn rfc1034_3_6_2_cname_chain_is_followed_to_the_data() {
        let answer = ask("chain1.example.test.", RecordType::A);
        assert_eq!(
            types(&answer.answers),
            vec![RecordType::CNAME, RecordType::CNAME, RecordType::A]
        );
        assert_eq!(types(&answer.authorities), vec![RecordType::NS]);
    }

    #[test]
    fn rfc1034_3_6_2_cname_loop_ends_cleanly_with_what_was_collected() {
        let answer = ask("loop1.example.test.", RecordType::A);
        assert_eq!(answer.rcode, ResponseCode::NoError);
        assert_eq!(answer.answers.len(), 2);
        assert!(answer.authorities.is_empty());
    }

    #[test]
    fn rfc1034_3_6_2_cname_chain_is_bounded() {
        let zone = ZoneSnapshot::build(&example_zone(7), Generation(1));
        let answer = lookup(&zone, &name("chain1.example.test."), RecordType::A, 1);
        assert_eq!(types(&answer.answers), vec![RecordType::CNAME]);
        assert_eq!(answer.kind, AnswerKind::ChainEnd);
    }

    #[test]
    fn rfc2308_cname_to_missing_name_is_nxdomain_with_the_cname() {
        let answer = ask("dangling.example.test.", RecordType::A);
        assert_eq!(answer.rcode, ResponseCode::NXDomain);
        assert_eq!(types(&answer.answers), vec![RecordType::CNAME]);
        assert_eq!(types(&answer.authorities), vec![RecordType::SOA]);
    }

    #[test]
    fn rfc1034_cname_leaving_the_zone_stops_there() {
        let answer = ask("out.example.test.", RecordType::A);
        assert_eq!(types(&answer.answers), vec![RecordType::CNAME]);
        assert!(answer.authorities.is_empty());
    }

    #[test]
    fn rfc1034_qtype_cname_returns_the_cname_itself() {
        let answer = ask("alias.example.test.", RecordType::CNAME);
        assert_eq!(types(&answer.answers), vec![RecordType::CNAME]);
    }

    #[test]
    fn rfc1034_4_3_2_referral_below_a_cut_is_not_authoritative_and_carries_glue() {
        for qname in [
            "sub.example.test.",
            "deep.sub.example.test.",
            "ns.sub.example.test.",
            "x.sub.example.test.",
        ] {
            let answer = ask(qname, RecordType::A);
            assert_eq!(answer.kind, AnswerKind::Referral, "{qname}");
            assert!(!answer.authoritative && answer.answers.is_empty());
            assert_eq!(answer.authorities[0].len(), 2);
            assert_eq!(types(&answer.additionals), vec![RecordType::A]);
        }
        assert_eq!(
            ask("sub.example.test.", RecordType::NS).kind,
            AnswerKind::Referral
        );
    }

    #[test]
    fn rfc4035_ds_at_the_cut_is_answered_by_the_parent() {
        let answer = ask("sub.example.test.", RecordType::DS);
        assert!(answer.authoritative);
        assert_eq!(answer.kind, AnswerKind::NoData);
        assert_eq!(types(&answer.authorities), vec![RecordType::SOA]);
    }

    #[test]
    fn rfc4592_wildcard_synthesizes_with_the_query_name_as_owner() {
        let answer = ask("foo.wild.example.test.", RecordType::A);
        assert_eq!(answer.answers[0][0].name, name("foo.wild.example.test."));
        assert_eq!(
            ask("foo.wild.example.test.", RecordType::MX).kind,
            AnswerKind::NoData
        );
    }

    #[test]
    fn rfc4592_no_synthesis_when_a_closer_name_exists() {
        assert_eq!(
            ask("exists.wild.example.test.", RecordType::A).kind,
            AnswerKind::NoData
        );
        assert_eq!(
            ask("y.wild.example.test.", RecordType::A).kind,
            AnswerKind::NoData
        );
        assert_eq!(
            ask("z.y.wild.example.test.", RecordType::A).rcode,
            ResponseCode::NXDomain
        );
    }

    #[test]
    fn rfc4592_wildcard_cname_is_followed() {
        let answer = ask("q.wc.example.test.", RecordType::A);
        assert_eq!(
            types(&answer.answers),
            vec![RecordType::CNAME, RecordType::A]
        );
        assert_eq!(answer.answers[0][0].name, name("q.wc.example.test."));
    }

    #[test]
    fn rfc4592_wildcard_does_not_apply_beyond_a_cut() {
        assert_eq!(
            ask("x.sub.example.test.", RecordType::A).kind,
            AnswerKind::Referral
        );
    }

    #[test]
    fn rfc8482_any_returns_one_rrset() {
        let answer = ask("www.example.test.", RecordType::ANY);
        assert_eq!(types(&answer.answers), vec![RecordType::A]);
        assert!(answer.authorities.is_empty() && answer.additionals.is_empty());
        assert_eq!(
            types(&ask("example.test.", RecordType::ANY).answers),
            vec![RecordType::SOA]
        );
        assert_eq!(
            ask("nope.example.test.", RecordType::ANY).rcode,
            ResponseCode::NXDomain
        );
    }

    #[test]
    fn apex_ns_answer_has_no_ns_in_authority() {
        let answer = ask("example.test.", RecordType::NS);
        assert!(answer.authorities.is_empty());
        assert_eq!(answer.additionals.len(), 3);
    }

    #[test]
    fn mx_targets_get_addresses_but_not_occluded_ones() {
        let answer = ask("mx.example.test.", RecordType::MX);
        let owners: Vec<String> = answer
            .additionals
            .iter()
            .map(|set| set[0].name.to_ascii())
            .collect();
        assert_eq!(owners[0], "www.example.test.");
        assert!(!owners.iter().any(|o| o.contains("sub")), "{owners:?}");
    }
}
