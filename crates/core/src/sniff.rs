//! Recognising files that are not CSV text from their first bytes, so the rejection can say
//! what the file is and what to do, instead of "missing columns".

/// Looks at the first bytes of an object; returns why it is not a CSV text file, if it
/// clearly is not.
pub fn not_csv(head: &[u8]) -> Option<String> {
    let starts = |magic: &[u8]| head.starts_with(magic);
    if starts(&[0x1f, 0x8b]) {
        return Some("the file is gzip-compressed, not CSV text; decompress it before dropping it".into());
    }
    if starts(b"PK\x03\x04") {
        return Some(
            "the file is a ZIP archive (an .xlsx workbook?), not CSV text; export the sheet as CSV (UTF-8)".into(),
        );
    }
    if starts(&[0xd0, 0xcf, 0x11, 0xe0]) {
        return Some("the file is an old Excel (.xls) workbook, not CSV text; export the sheet as CSV (UTF-8)".into());
    }
    if starts(b"%PDF") {
        return Some("the file is a PDF, not CSV text".into());
    }
    if starts(&[0xff, 0xfe]) || starts(&[0xfe, 0xff]) {
        return Some("the file is UTF-16 text; save it as UTF-8 (\"CSV UTF-8\" in spreadsheet programs)".into());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compressed_and_office_files_are_named() {
        assert!(not_csv(&[0x1f, 0x8b, 8, 0]).unwrap().contains("gzip"));
        assert!(not_csv(b"PK\x03\x04rest").unwrap().contains("xlsx"));
        assert!(not_csv(&[0xd0, 0xcf, 0x11, 0xe0, 0xa1]).unwrap().contains(".xls"));
        assert!(not_csv(&[0xff, 0xfe, b'a', 0]).unwrap().contains("UTF-16"));
    }

    #[test]
    fn csv_text_and_a_utf8_bom_pass() {
        assert_eq!(not_csv(b"SEQGEN23,YEAR\r\n"), None);
        assert_eq!(not_csv(b"\xef\xbb\xbfa,b\n"), None);
        assert_eq!(not_csv(b""), None);
    }
}
