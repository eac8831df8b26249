//! Queries signed with TSIG (RFC 8945): a secondary's SOA query before a transfer (BIND
//! signs it with the transfer key and refuses an unsigned answer). The signature is checked
//! against the configured keys; the query without its TSIG record is answered by the
//! server's own answer path, and that answer is signed. A signature that does not verify
//! gets the unsigned TSIG error (NOTAUTH), as for transfers.

use std::net::IpAddr;

use domain::base::iana::Rtype;
use domain::base::{Message, MessageBuilder, ParsedName};
use domain::rdata::tsig::Time48;
use domain::rdata::AllRecordData;
use domain::tsig::ServerTransaction;

use crate::keys::Keys;

/// Checks the TSIG of `request` and signs `answer`'s reply to it; see the module
/// documentation. `None` when `request` is not a signed message after all.
pub fn signed_query(
    keys: &Keys,
    request: &[u8],
    peer: IpAddr,
    answer: &mut dyn FnMut(&[u8]) -> Option<Vec<u8>>,
) -> Option<Vec<u8>> {
    let start = server::tsig_start(request)?;
    let mut message = Message::from_octets(request.to_vec()).ok()?;
    let transaction = match ServerTransaction::request(keys.store(), &mut message, Time48::now()) {
        Ok(Some(transaction)) => transaction,
        Ok(None) => return None,
        Err(error) => {
            tracing::warn!(%peer, %error, "a signed query refused: its TSIG does not verify");
            let mut reply = error
                .build_message(&message, MessageBuilder::new_vec())
                .ok()?
                .finish();
            crate::primary::bad_signature_as_badsig(&mut reply);
            return Some(reply);
        }
    };
    // The TSIG record is taken off the count (and the ID restored); cut its bytes too.
    let unsigned = &message.as_slice()[..start];
    let reply = answer(unsigned)?;
    let parsed = Message::from_octets(reply).ok()?;
    let mut builder = MessageBuilder::new_vec();
    *builder.header_mut() = parsed.header();
    let mut question = builder.question();
    for item in parsed.question() {
        question.push(item.ok()?).ok()?;
    }
    let mut additional = parsed
        .copy_records(question.answer(), |record| {
            if record.rtype() == Rtype::TSIG {
                return None;
            }
            record
                .into_any_record::<AllRecordData<_, ParsedName<_>>>()
                .ok()
        })
        .ok()?;
    transaction.answer(&mut additional, Time48::now()).ok()?;
    Some(additional.finish())
}
