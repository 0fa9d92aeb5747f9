//! XMP, as text streaming by: whether it holds a location, and its
//! Orientation (`tiff:Orientation`), found across the boundaries of the
//! pieces it comes in; and the smallest packet that keeps that Orientation.

const GPS: [&[u8]; 2] = [b"GPSLatitude", b"GPSLongitude"];
/// The Orientation as an attribute (either quote) or an element; its digit follows.
const ORIENTATION: [&[u8]; 3] = [b"tiff:Orientation=\"", b"tiff:Orientation='", b"tiff:Orientation>"];
/// The longest needle and the byte after it.
const LONGEST: usize = 19;

/// What XMP text said, as far as it has passed.
#[derive(Clone, Debug, Default)]
pub struct XmpScanner {
    tail: Vec<u8>,
    pub gps: bool,
    /// The Orientation of the image, 1 to 8.
    pub orientation: Option<u16>,
}

impl XmpScanner {
    /// All of a packet at once.
    pub fn of(packet: &[u8]) -> Self {
        let mut scanner = Self::default();
        scanner.feed(packet);
        scanner
    }

    pub fn feed(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        // The end of what came before and the start of this, for needles across the seam.
        let mut seam = std::mem::take(&mut self.tail);
        seam.extend_from_slice(&bytes[..bytes.len().min(LONGEST)]);
        self.look_in(&seam);
        self.look_in(bytes);
        let last = if bytes.len() >= LONGEST - 1 { bytes } else { &seam };
        self.tail = last[last.len().saturating_sub(LONGEST - 1)..].to_vec();
    }

    fn look_in(&mut self, text: &[u8]) {
        self.gps = self.gps || GPS.iter().any(|needle| find(text, needle).is_some());
        if self.orientation.is_none() {
            self.orientation = ORIENTATION.iter().find_map(|needle| {
                let digit = *text.get(find(text, needle)? + needle.len())?;
                (b'1'..=b'8').contains(&digit).then(|| u16::from(digit - b'0'))
            });
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|window| window == needle)
}

pub fn contains_gps(bytes: &[u8]) -> bool {
    XmpScanner::of(bytes).gps
}

/// An XMP packet holding the Orientation and nothing else.
pub fn orientation_packet(orientation: u16) -> Vec<u8> {
    format!(
        "<?xpacket begin=\"\u{feff}\" id=\"W5M0MpCehiHzreSzNTczkc9d\"?>\
         <x:xmpmeta xmlns:x=\"adobe:ns:meta/\">\
         <rdf:RDF xmlns:rdf=\"http://www.w3.org/1999/02/22-rdf-syntax-ns#\">\
         <rdf:Description rdf:about=\"\" xmlns:tiff=\"http://ns.adobe.com/tiff/1.0/\" \
         tiff:Orientation=\"{orientation}\"/>\
         </rdf:RDF></x:xmpmeta><?xpacket end=\"r\"?>"
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn needles_split_across_pieces_are_found() {
        let text = b"<rdf:Description exif:GPSLatitude=\"12,3N\" tiff:Orientation=\"6\"/>";
        for cut in 1..text.len() {
            let mut scanner = XmpScanner::default();
            scanner.feed(&text[..cut]);
            scanner.feed(&text[cut..]);
            assert!(scanner.gps, "cut at {cut}");
            assert_eq!(scanner.orientation, Some(6), "cut at {cut}");
        }
        let mut byte_by_byte = XmpScanner::default();
        for byte in b"<tiff:Orientation>8</tiff:Orientation>" {
            byte_by_byte.feed(&[*byte]);
        }
        assert_eq!(byte_by_byte.orientation, Some(8));
    }

    #[test]
    fn nothing_is_found_where_there_is_nothing() {
        let scanner = XmpScanner::of(b"<x:xmpmeta><dc:creator>me</dc:creator><tiff:Orientation='9'/></x:xmpmeta>");
        assert!(!scanner.gps);
        assert_eq!(scanner.orientation, None);
    }

    #[test]
    fn the_orientation_packet_says_only_that() {
        let packet = orientation_packet(3);
        let scanner = XmpScanner::of(&packet);
        assert_eq!((scanner.gps, scanner.orientation), (false, Some(3)));
        assert!(packet.is_ascii() || std::str::from_utf8(&packet).is_ok());
    }
}
