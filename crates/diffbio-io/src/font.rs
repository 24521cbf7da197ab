//! A TrueType font for text in bitmap figures (the CLI's table, the integrate example's
//! plots): plotters draws no bitmap text without one.

use std::sync::OnceLock;

/// Where a TrueType font is looked for, after `$DIFFBIO_FONT`.
const FONT_PATHS: [&str; 4] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/Library/Fonts/Arial.ttf",
];

/// The bytes of the first readable font file of `$DIFFBIO_FONT`, then a system DejaVu Sans
/// (or Arial on macOS); `None` when there is none. Read once per process.
pub fn read_font() -> Option<&'static [u8]> {
    static FONT: OnceLock<Option<Vec<u8>>> = OnceLock::new();
    FONT.get_or_init(|| {
        std::env::var("DIFFBIO_FONT")
            .into_iter()
            .chain(FONT_PATHS.map(String::from))
            .find_map(|path| std::fs::read(path).ok())
    })
    .as_deref()
}
