//! Property tests of the upload sniffer: any bytes under any file name are either accepted as
//! one of the allowed types (and the name agrees) or refused with a 400, never a panic.
//! Bytes start with real magic numbers often, so the accepting paths are exercised too.

use proptest::prelude::*;

use super::attachments::check_type;

/// Leading bytes of the formats the sniffer knows, and of some it must refuse.
const MAGIC: &[&[u8]] = &[
    b"\x89PNG\r\n\x1a\n",
    b"\xff\xd8\xff",
    b"GIF89a",
    b"RIFF\0\0\0\0WEBP",
    b"%PDF-1.7",
    b"\x1a\x45\xdf\xa3",
    b"\0\0\0\x18ftypmp42",
    b"OggS",
    b"ID3",
    b"MZ",
    b"<svg",
    b"<html>",
    b"PK\x03\x04",
];

fn upload_head() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::sample::select(MAGIC),
        prop::collection::vec(any::<u8>(), 0..64),
        any::<bool>(),
    )
        .prop_map(|(magic, rest, with_magic)| {
            let mut head = if with_magic {
                magic.to_vec()
            } else {
                Vec::new()
            };
            head.extend(rest);
            head
        })
}

fn file_name() -> impl Strategy<Value = String> {
    prop_oneof![
        ".{0,30}",
        "[a-z]{1,8}\\.(png|jpg|jpeg|gif|webp|pdf|mp4|webm|mp3|ogg|svg|html|exe|PNG|Jpg)",
        Just(String::new()),
        Just(".".to_owned()),
        Just("a.b.c.png".to_owned()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 5000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn sniffer_accepts_or_refuses_never_panics(head in upload_head(), name in file_name()) {
        let sniffed = infer::get(&head).map(|t| t.mime_type());
        match check_type(sniffed, &name) {
            Ok(accepted) => prop_assert_eq!(Some(accepted), sniffed),
            Err(error) => prop_assert_eq!(error.status(), axum::http::StatusCode::BAD_REQUEST),
        }
    }
}
