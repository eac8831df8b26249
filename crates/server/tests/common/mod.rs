//! The zone the server tests (and the NSD comparison example) are built on.
#![allow(dead_code)]

use std::str::FromStr;

use model::rdata::{A, AAAA, CNAME, MX, NS, SOA, TXT};
use model::{Name, RData, Record, ZoneContent};

pub fn name(text: &str) -> Name {
    // Test names are literals written to parse.
    Name::from_str(text).expect("test name parses")
}

fn record(owner: &str, ttl: u32, data: RData) -> Record {
    Record::from_rdata(name(owner), ttl, data)
}

/// The same content as the NSD comparison zone `example.test` (see examples/).
pub fn example_zone(serial: u32) -> ZoneContent {
    let o = |label: &str| {
        if label == "@" {
            "example.test.".to_string()
        } else {
            format!("{label}.example.test.")
        }
    };
    let mut records = vec![
        record(
            "example.test.",
            3600,
            RData::SOA(SOA::new(
                name("ns1.example.test."),
                name("hostmaster.example.test."),
                serial,
                3600,
                600,
                86400,
                300,
            )),
        ),
        record(&o("@"), 3600, RData::NS(NS(name("ns1.example.test.")))),
        record(&o("@"), 3600, RData::NS(NS(name("ns2.example.test.")))),
        record(
            &o("@"),
            3600,
            RData::MX(MX::new(10, name("mail.example.test."))),
        ),
        record(&o("ns1"), 3600, RData::A(A::new(192, 0, 2, 1))),
        record(&o("ns2"), 3600, RData::A(A::new(192, 0, 2, 2))),
        record(
            &o("ns2"),
            3600,
            RData::AAAA(AAAA::from_str("2001:db8::2").expect("literal")),
        ),
        record(&o("www"), 60, RData::A(A::new(192, 0, 2, 10))),
        record(&o("www"), 60, RData::A(A::new(192, 0, 2, 11))),
        record(&o("www"), 3600, RData::TXT(TXT::new(vec!["hello".into()]))),
        record(&o("a.b.c"), 3600, RData::A(A::new(192, 0, 2, 20))),
        record(
            &o("alias"),
            3600,
            RData::CNAME(CNAME(name("www.example.test."))),
        ),
        record(
            &o("chain1"),
            3600,
            RData::CNAME(CNAME(name("chain2.example.test."))),
        ),
        record(
            &o("chain2"),
            3600,
            RData::CNAME(CNAME(name("www.example.test."))),
        ),
        record(
            &o("loop1"),
            3600,
            RData::CNAME(CNAME(name("loop2.example.test."))),
        ),
        record(
            &o("loop2"),
            3600,
            RData::CNAME(CNAME(name("loop1.example.test."))),
        ),
        record(
            &o("dangling"),
            3600,
            RData::CNAME(CNAME(name("nothere.example.test."))),
        ),
        record(
            &o("out"),
            3600,
            RData::CNAME(CNAME(name("www.example.org."))),
        ),
        record(&o("sub"), 3600, RData::NS(NS(name("ns.sub.example.test.")))),
        record(&o("sub"), 3600, RData::NS(NS(name("ns.elsewhere.org.")))),
        record(&o("ns.sub"), 3600, RData::A(A::new(192, 0, 2, 30))),
        record(&o("deep.sub"), 3600, RData::A(A::new(192, 0, 2, 31))),
        record(&o("*.sub"), 3600, RData::A(A::new(192, 0, 2, 50))),
        record(&o("sec"), 3600, RData::NS(NS(name("ns1.example.test.")))),
        record(&o("*.wild"), 3600, RData::A(A::new(192, 0, 2, 40))),
        record(
            &o("*.wild"),
            3600,
            RData::TXT(TXT::new(vec!["wild".into()])),
        ),
        record(
            &o("exists.wild"),
            3600,
            RData::TXT(TXT::new(vec!["exists".into()])),
        ),
        record(&o("x.y.wild"), 3600, RData::A(A::new(192, 0, 2, 41))),
        record(
            &o("*.wc"),
            3600,
            RData::CNAME(CNAME(name("www.example.test."))),
        ),
        record(&o("order"), 3600, RData::TXT(TXT::new(vec!["x".into()]))),
        record(&o("order"), 3600, RData::A(A::new(192, 0, 2, 99))),
        record(
            &o("order"),
            3600,
            RData::AAAA(AAAA::from_str("2001:db8::99").expect("literal")),
        ),
        record(
            &o("cbig"),
            3600,
            RData::CNAME(CNAME(name("big.example.test."))),
        ),
        record(&o("mid"), 3600, RData::TXT(TXT::new(vec!["m".repeat(200)]))),
        record(&o("mid"), 3600, RData::TXT(TXT::new(vec!["n".repeat(200)]))),
        record(
            &o("mid2"),
            3600,
            RData::TXT(TXT::new(vec!["p".repeat(225)])),
        ),
        record(
            &o("mid2"),
            3600,
            RData::TXT(TXT::new(vec!["q".repeat(225)])),
        ),
        record(
            &o("tosub"),
            3600,
            RData::CNAME(CNAME(name("x.sub.example.test."))),
        ),
        record(
            &o("wsub"),
            3600,
            RData::CNAME(CNAME(name("foo.wild.example.test."))),
        ),
        record(
            &o("mx"),
            3600,
            RData::MX(MX::new(10, name("www.example.test."))),
        ),
        record(
            &o("mx"),
            3600,
            RData::MX(MX::new(20, name("ns.sub.example.test."))),
        ),
        record(&o("big"), 3600, RData::TXT(TXT::new(vec!["a".repeat(200)]))),
    ];
    for i in 0..30 {
        records.push(record(
            &o("big"),
            3600,
            RData::TXT(TXT::new(vec![format!("{i:03}{}", "b".repeat(200))])),
        ));
    }
    for i in 0..100u8 {
        records.push(record(
            &o("many"),
            3600,
            RData::A(A::new(10, 0, i / 250, i % 250 + 1)),
        ));
    }
    for i in 0..40u8 {
        records.push(record(
            &o("big2"),
            3600,
            RData::NS(NS(name(&format!("ns{i}.big2.example.test.")))),
        ));
        records.push(record(
            &o(&format!("ns{i}.big2")),
            3600,
            RData::A(A::new(10, 9, 0, i + 1)),
        ));
        records.push(record(
            &o(&format!("ns{i}.big2")),
            3600,
            RData::AAAA(AAAA::from_str(&format!("2001:db8::{:x}", i + 1)).expect("literal")),
        ));
    }
    // Content built here is valid by construction.
    ZoneContent::from_records(name("example.test."), records).expect("example zone is valid")
}
