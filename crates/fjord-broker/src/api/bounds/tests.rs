//! The schemas are proven against `kafka-protocol`, version by version: a generator writes a
//! body from the schema with every array holding two elements (nested ones too), every string
//! and bytes field non-empty, every known tagged field set and an unknown one in every
//! tagged-field section; `kafka-protocol` must decode it whole and encode it back to the same
//! bytes. A wrong field order, type, version range or flexible boundary shows up as a failed
//! decode or different bytes. The walker must then accept that body and take all of it, and
//! refuse each of its counts and lengths raised to one more than the bytes left.

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestKind};

use super::schema;
use super::{BoundsError, Field, Ty, What, check_body, walk};
use crate::api::SUPPORTED;

/// Where the generator wrote a count or length prefix.
#[derive(Debug, Clone, Copy)]
struct Prefix {
    at: usize,
    width: usize,
    what: What,
    /// In or of a known tagged field: a lie there is a [`BoundsError::TagSize`].
    known_tag: bool,
}

/// Writes a request body from a schema; see the module docs.
struct Gen {
    version: i16,
    flexible: bool,
    out: Vec<u8>,
    prefixes: Vec<Prefix>,
    /// Nullable-shaped values (strings, bytes, arrays, optional structs) outside tagged
    /// fields, counted in writing order.
    slots: usize,
    /// The slot written as null, if any.
    null_slot: Option<usize>,
}

/// Unknown tag added to every tagged-field section: above every tag the schemas declare.
const UNKNOWN_TAG: u32 = 90;
/// Tags below this that a struct does not declare are probed (see [`Gen::fields`]).
const PROBED_TAGS: u32 = 8;

impl Gen {
    fn body(key: ApiKey, version: i16, null_slot: Option<usize>) -> Gen {
        let (flexible, fields) = schema::message(key).expect("a schema");
        let mut g = Gen {
            version,
            flexible: version >= flexible,
            out: Vec::new(),
            prefixes: Vec::new(),
            slots: 0,
            null_slot,
        };
        g.fields(fields, false);
        g
    }

    fn uvarint(&mut self, mut v: u32) {
        while v >= 0x80 {
            self.out.push(v as u8 | 0x80);
            v >>= 7;
        }
        self.out.push(v as u8);
    }

    /// Writes a length or count prefix (`None`: null).
    fn prefix(&mut self, what: What, len: Option<usize>) {
        let at = self.out.len();
        if self.flexible {
            self.uvarint(len.map_or(0, |n| n as u32 + 1));
        } else if what == What::String {
            let n = len.map_or(-1, |n| n as i16);
            self.out.extend(n.to_be_bytes());
        } else {
            let n = len.map_or(-1, |n| n as i32);
            self.out.extend(n.to_be_bytes());
        }
        if len.is_some() {
            let width = self.out.len() - at;
            self.prefixes.push(Prefix {
                at,
                width,
                what,
                known_tag: false,
            });
        }
    }

    /// Whether this nullable-shaped value is the one written as null.
    fn null(&mut self, in_tag: bool) -> bool {
        if in_tag {
            return false;
        }
        self.slots += 1;
        self.null_slot == Some(self.slots - 1)
    }

    fn fields(&mut self, fields: &[Field], in_tag: bool) {
        for f in fields {
            if f.tag.is_none() && f.present(self.version) {
                self.value(f.ty, in_tag);
            }
        }
        if !self.flexible {
            return;
        }
        let mut known: Vec<&Field> = fields
            .iter()
            .filter(|f| f.tag.is_some() && f.present(self.version))
            .collect();
        known.sort_by_key(|f| f.tag);
        // Low tags the schema never declares go in as one-byte unknown fields: one the decoder
        // knows by type would be read past its byte and the round trip would fail.
        let probes: Vec<u32> = (0..PROBED_TAGS)
            .filter(|t| fields.iter().all(|f| f.tag != Some(*t)))
            .collect();
        let at = self.out.len();
        self.uvarint((known.len() + probes.len()) as u32 + 1);
        self.prefixes.push(Prefix {
            at,
            width: self.out.len() - at,
            what: What::TaggedFields,
            known_tag: false,
        });
        for f in known {
            let mut value = Gen {
                version: self.version,
                flexible: true,
                out: Vec::new(),
                prefixes: Vec::new(),
                slots: 0,
                null_slot: None,
            };
            value.value(f.ty, true);
            self.tagged(f.tag.unwrap_or_default(), value, true);
        }
        for tag in probes.into_iter().chain([UNKNOWN_TAG]) {
            let unknown = Gen {
                version: self.version,
                flexible: true,
                out: vec![0xab],
                prefixes: Vec::new(),
                slots: 0,
                null_slot: None,
            };
            self.tagged(tag, unknown, false);
        }
    }

    /// Writes a tagged field; `known`: one the schema declares (the decoder reads it by type).
    fn tagged(&mut self, tag: u32, value: Gen, known: bool) {
        self.uvarint(tag);
        let at = self.out.len();
        self.uvarint(value.out.len() as u32);
        self.prefixes.push(Prefix {
            at,
            width: self.out.len() - at,
            what: What::TaggedField,
            known_tag: known,
        });
        let base = self.out.len();
        self.out.extend(&value.out);
        self.prefixes.extend(value.prefixes.iter().map(|p| Prefix {
            at: p.at + base,
            known_tag: known,
            ..*p
        }));
    }

    fn value(&mut self, ty: Ty, in_tag: bool) {
        match ty {
            // Zeros then 0x01 0x7f: a bool or int8 reads 1 (what the encoder writes back for
            // true), and a fixed field misread as a count or length reads far too long.
            Ty::Fixed(1) => self.out.push(1),
            Ty::Fixed(width) => {
                let width = usize::from(width);
                self.out.extend(std::iter::repeat_n(0, width - 2));
                self.out.extend([0x01, 0x7f]);
            }
            Ty::Str if self.null(in_tag) => self.prefix(What::String, None),
            Ty::Str => {
                self.prefix(What::String, Some(3));
                self.out.extend(b"abc");
            }
            Ty::Bytes if self.null(in_tag) => self.prefix(What::Bytes, None),
            Ty::Bytes => {
                self.prefix(What::Bytes, Some(2));
                self.out.extend([0xfe, 0xed]);
            }
            Ty::Struct(fields) => self.fields(fields, in_tag),
            Ty::OptStruct(_) if self.null(in_tag) => self.out.push(0xff),
            Ty::OptStruct(fields) => {
                self.out.push(1);
                self.fields(fields, in_tag);
            }
            Ty::Array(_) if self.null(in_tag) => self.prefix(What::Array, None),
            Ty::Array(elem) => {
                self.prefix(What::Array, Some(2));
                self.value(*elem, in_tag);
                self.value(*elem, in_tag);
            }
        }
    }
}

/// Every served (API, version), the version as the body is read (`wire_version`: an old
/// version served as the identical newer one counts as that one).
fn served() -> impl Iterator<Item = (ApiKey, i16)> {
    SUPPORTED.iter().flat_map(|&(key, min, max)| {
        (min..=max).map(move |v| (key, crate::api::wire_version(key, v)))
    })
}

/// Decodes `body` with `kafka-protocol` and encodes it back; `Err` when it does not decode.
fn round_trip(key: ApiKey, version: i16, body: &[u8]) -> Result<Vec<u8>, String> {
    let mut buf = Bytes::copy_from_slice(body);
    let request = RequestKind::decode(key, &mut buf, version).map_err(|e| e.to_string())?;
    assert!(
        buf.is_empty(),
        "{key:?} v{version}: {} bytes left",
        buf.len()
    );
    let mut out = BytesMut::new();
    request
        .encode(&mut out, version)
        .unwrap_or_else(|e| panic!("{key:?} v{version} decodes but does not encode: {e}"));
    Ok(out.to_vec())
}

#[test]
fn every_served_api_has_one_schema_and_nothing_else_does() {
    for &(key, _, _) in SUPPORTED {
        assert!(
            schema::message(key).is_some(),
            "{key:?} has no request schema"
        );
    }
    for &(key, _, _) in schema::MESSAGES {
        assert_eq!(
            schema::MESSAGES
                .iter()
                .filter(|(k, _, _)| *k == key)
                .count(),
            1,
            "{key:?} twice"
        );
        assert!(
            SUPPORTED.iter().any(|(k, _, _)| *k == key),
            "{key:?} is not served"
        );
    }
}

/// Minimum wire size of a value: 0 only for a struct with no field at that version.
fn min_size(ty: Ty, version: i16, flexible: bool) -> usize {
    let prefix = |width| if flexible { 1 } else { width };
    match ty {
        Ty::Fixed(width) => usize::from(width),
        Ty::Str => prefix(2),
        Ty::Bytes | Ty::Array(_) => prefix(4),
        Ty::OptStruct(_) => 1,
        Ty::Struct(fields) => {
            let own: usize = fields
                .iter()
                .filter(|f| f.tag.is_none() && f.present(version))
                .map(|f| min_size(f.ty, version, flexible))
                .sum();
            own + usize::from(flexible)
        }
    }
}

/// Every array element needs at least one byte; so `count > remaining` never refuses a
/// well-formed request (nor one `kafka-protocol` would decode).
fn check_elements(ty: Ty, version: i16, flexible: bool, path: &str) {
    match ty {
        Ty::Array(elem) => {
            assert!(
                min_size(*elem, version, flexible) >= 1,
                "{path}: empty elements"
            );
            check_elements(*elem, version, flexible, path);
        }
        Ty::Struct(fields) | Ty::OptStruct(fields) => {
            for f in fields.iter().filter(|f| f.present(version)) {
                check_elements(f.ty, version, flexible, path);
            }
        }
        Ty::Fixed(_) | Ty::Str | Ty::Bytes => {}
    }
}

#[test]
fn every_array_element_takes_at_least_one_byte() {
    for (key, version) in served() {
        let (flexible, fields) = schema::message(key).unwrap();
        let path = format!("{key:?} v{version}");
        check_elements(Ty::Struct(fields), version, version >= flexible, &path);
    }
}

#[test]
fn populated_bodies_of_every_served_version_match_kafka_protocol_and_pass() {
    for (key, version) in served() {
        let g = Gen::body(key, version, None);
        let body = &g.out;
        let encoded = round_trip(key, version, body)
            .unwrap_or_else(|e| panic!("{key:?} v{version}: kafka-protocol refuses: {e}"));
        assert_eq!(&encoded, body, "{key:?} v{version}: re-encoded differently");
        assert_eq!(
            check_body(key, version, body),
            Ok(body.len()),
            "{key:?} v{version}"
        );
        // Trailing bytes are the decoder's business, not the walker's.
        let mut longer = body.clone();
        longer.push(0);
        assert_eq!(check_body(key, version, &longer), Ok(body.len()));
        // A cut anywhere is refused (a body of no fields has nothing to cut).
        for cut in 0..body.len() {
            assert!(
                check_body(key, version, &body[..cut]).is_err(),
                "{key:?} v{version}: cut at {cut} accepted"
            );
        }
    }
}

/// Elements of only fixed-width fields are skipped whole; the answer, and the error of every
/// cut and of every array count raised by one, is the field-by-field walk's.
#[test]
fn whole_element_skips_answer_as_the_field_by_field_walk() {
    for (key, version) in served() {
        let g = Gen::body(key, version, None);
        let flexible = g.flexible;
        let body = g.out;
        for cut in 0..=body.len() {
            assert_eq!(
                walk(key, version, &body[..cut], true),
                walk(key, version, &body[..cut], false),
                "{key:?} v{version}: cut at {cut}"
            );
        }
        for p in g.prefixes.iter().filter(|p| p.what == What::Array) {
            let mut raised = body.clone();
            // One more element than the array has: the walk runs into what follows.
            if flexible {
                raised[p.at] = raised[p.at].wrapping_add(1);
            } else {
                raised[p.at + p.width - 1] = raised[p.at + p.width - 1].wrapping_add(1);
            }
            assert_eq!(
                walk(key, version, &raised, true),
                walk(key, version, &raised, false),
                "{key:?} v{version}: {p:?} one more"
            );
        }
    }
    // The case it is for: a fetch's partitions, at every served version.
    fn has_fixed_elements(fields: &[Field], version: i16) -> bool {
        fields
            .iter()
            .filter(|f| f.present(version))
            .any(|f| match f.ty {
                Ty::Array(Ty::Struct(inner)) => {
                    super::fixed_width(inner, version).is_some()
                        || has_fixed_elements(inner, version)
                }
                Ty::Array(_) | Ty::Fixed(_) | Ty::Str | Ty::Bytes => false,
                Ty::Struct(inner) | Ty::OptStruct(inner) => has_fixed_elements(inner, version),
            })
    }
    let (_, fetch) = schema::message(ApiKey::Fetch).unwrap();
    for version in 4..=17 {
        assert!(has_fixed_elements(fetch, version), "Fetch v{version}");
    }
}

#[test]
fn every_count_and_length_one_past_the_remaining_bytes_is_refused() {
    for (key, version) in served() {
        let g = Gen::body(key, version, None);
        let flexible = g.flexible;
        let body = g.out;
        for p in g.prefixes {
            let after = body.len() - p.at - p.width;
            let len = after + 1;
            let mut bad = body[..p.at].to_vec();
            if flexible {
                let mut v = len as u32
                    + u32::from(matches!(p.what, What::Array | What::String | What::Bytes));
                while v >= 0x80 {
                    bad.push(v as u8 | 0x80);
                    v >>= 7;
                }
                bad.push(v as u8);
            } else if p.what == What::String {
                bad.extend(i16::try_from(len).expect("small bodies").to_be_bytes());
            } else {
                bad.extend(i32::try_from(len).expect("small bodies").to_be_bytes());
            }
            bad.extend(&body[p.at + p.width..]);
            match check_body(key, version, &bad) {
                Err(BoundsError::TagSize { .. }) if p.known_tag => {}
                Err(BoundsError::TooLong {
                    what,
                    len: got,
                    remaining,
                    offset,
                }) if !p.known_tag => {
                    assert_eq!((what, offset), (p.what, p.at), "{key:?} v{version}");
                    assert_eq!(got, len as u64);
                    assert_eq!(remaining, after, "{key:?} v{version}");
                }
                other => panic!("{key:?} v{version}: {p:?} raised to {len}: {other:?}"),
            }
        }
    }
}

#[test]
fn nulls_the_decoder_takes_pass_the_walker() {
    let mut accepted = 0;
    for (key, version) in served() {
        for slot in 0.. {
            let g = Gen::body(key, version, Some(slot));
            if g.slots <= slot {
                break;
            }
            // Not nullable there: the decoder refuses it, and so may the walker.
            let Ok(encoded) = round_trip(key, version, &g.out) else {
                continue;
            };
            accepted += 1;
            assert_eq!(encoded, g.out, "{key:?} v{version} null slot {slot}");
            assert_eq!(
                check_body(key, version, &g.out),
                Ok(g.out.len()),
                "{key:?} v{version} null slot {slot}"
            );
        }
    }
    // Metadata's topics, Produce's transactional id and records, group instance ids, ...
    assert!(accepted > 100, "only {accepted} nullable fields found");
}

#[test]
fn handler_test_requests_pass_at_every_version_they_encode() {
    let batch = Bytes::from_static(b"not a batch, but bytes all the same");
    let topic_id = uuid::Uuid::from_u128(7);
    let mut checked = 0;
    for (key, version) in served() {
        for request in crate::api::tests::requests(key, version, topic_id, &batch) {
            let mut body = BytesMut::new();
            // Some carry fields of other versions on purpose; those do not encode here.
            if request.encode(&mut body, version).is_err() {
                continue;
            }
            checked += 1;
            assert_eq!(
                check_body(key, version, &body),
                Ok(body.len()),
                "{key:?} v{version}: {request:?}"
            );
        }
    }
    assert!(checked > 150, "only {checked} requests encoded");
}

#[test]
fn lying_counts_of_the_e2e_test_are_refused_before_decoding() {
    // Produce v3: transactional id null, acks, timeout, then 2^31-1 topics and nothing else.
    let mut body = Vec::new();
    body.extend((-1i16).to_be_bytes());
    body.extend(1i16.to_be_bytes());
    body.extend(1000i32.to_be_bytes());
    body.extend(i32::MAX.to_be_bytes());
    assert_eq!(
        check_body(ApiKey::Produce, 3, &body),
        Err(BoundsError::TooLong {
            what: What::Array,
            len: i32::MAX as u64,
            remaining: 0,
            offset: 8,
        })
    );
    // Produce v9: the compact count 2^32-1 (2^32-2 topics).
    let mut body = vec![0];
    body.extend(1i16.to_be_bytes());
    body.extend(1000i32.to_be_bytes());
    body.extend([0xff, 0xff, 0xff, 0xff, 0x0f]);
    let err = check_body(ApiKey::Produce, 9, &body).unwrap_err();
    assert_eq!(
        err.to_string(),
        "array of 4294967294 elements at byte 7, but only 0 bytes remain"
    );
    // Negative lengths and unknown APIs.
    assert!(matches!(
        check_body(ApiKey::Produce, 3, &[0xff, 0xfe]),
        Err(BoundsError::Negative { len: -2, .. })
    ));
    assert_eq!(
        check_body(ApiKey::EndTxn, 0, &[]),
        Err(BoundsError::NoSchema)
    );
}

#[test]
fn known_tagged_field_must_fill_its_size() {
    // Fetch v17's body with one partition whose replica_directory_id (tag 0, a uuid) claims
    // 17 bytes: the decoder would read 16 and resume inside the field.
    let g = Gen::body(ApiKey::Fetch, 17, None);
    let uuid_tag = [0x00, 0x10];
    let at = g
        .out
        .windows(2)
        .position(|w| w == uuid_tag)
        .expect("a replica_directory_id tag");
    let mut bad = g.out.clone();
    bad[at + 1] = 0x11;
    bad.insert(at + 2 + 16, 0);
    assert!(matches!(
        check_body(ApiKey::Fetch, 17, &bad),
        Err(BoundsError::TagSize {
            tag: 0,
            size: 17,
            ..
        })
    ));
}
