//! Host-side decompression of a bzImage payload, in the formats the kernel build produces.
//!
//! On hosts without VT-x/AMD-V the in-guest decompressor runs emulated and takes about 100 s;
//! here it takes well under a second. Every format except gzip has the uncompressed size
//! appended as 4 little-endian bytes (gzip's trailer ends with the same field, ISIZE), which
//! bounds the output.

use std::io::Read;

use crate::Error;

/// Largest payload we decompress: no kernel is near this, so more means a corrupt size.
const MAX_UNCOMPRESSED: u64 = 1 << 30;
/// LZ4 legacy frame magic (`lz4 -l`).
const LZ4_LEGACY_MAGIC: u32 = 0x184c_2102;
/// Uncompressed size of an LZ4 legacy block.
const LZ4_LEGACY_BLOCK: usize = 8 << 20;

/// The compression of a bzImage payload, from its magic bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PayloadFormat {
    /// gzip (decompressed on the host).
    Gzip,
    /// xz, with the x86 BCJ filter (on the host).
    Xz,
    /// LZ4 legacy frames (on the host).
    Lz4,
    /// zstd (on the host).
    Zstd,
    /// bzip2 (left to the guest).
    Bzip2,
    /// lzma (left to the guest).
    Lzma,
    /// lzo (left to the guest).
    Lzo,
    /// Not recognised (left to the guest).
    Unknown,
}

impl PayloadFormat {
    /// Recognises `payload` by its first bytes.
    pub fn detect(payload: &[u8]) -> Self {
        match payload {
            [0x1f, 0x8b, ..] => PayloadFormat::Gzip,
            [0xfd, b'7', b'z', b'X', b'Z', 0, ..] => PayloadFormat::Xz,
            [0x02, 0x21, 0x4c, 0x18, ..] => PayloadFormat::Lz4,
            [0x28, 0xb5, 0x2f, 0xfd, ..] => PayloadFormat::Zstd,
            [b'B', b'Z', b'h', ..] => PayloadFormat::Bzip2,
            [0x5d, 0x00, 0x00, ..] => PayloadFormat::Lzma,
            [0x89, b'L', b'Z', b'O', ..] => PayloadFormat::Lzo,
            _ => PayloadFormat::Unknown,
        }
    }

    /// The name used in messages.
    pub fn name(self) -> &'static str {
        match self {
            PayloadFormat::Gzip => "gzip",
            PayloadFormat::Xz => "xz",
            PayloadFormat::Lz4 => "lz4",
            PayloadFormat::Zstd => "zstd",
            PayloadFormat::Bzip2 => "bzip2",
            PayloadFormat::Lzma => "lzma",
            PayloadFormat::Lzo => "lzo",
            PayloadFormat::Unknown => "unknown",
        }
    }

    /// True if iovmm decompresses this format itself.
    pub fn on_host(self) -> bool {
        matches!(
            self,
            PayloadFormat::Gzip | PayloadFormat::Xz | PayloadFormat::Lz4 | PayloadFormat::Zstd
        )
    }
}

fn fail(format: PayloadFormat, reason: impl Into<String>) -> Error {
    Error::Decompress {
        format: format.name(),
        reason: reason.into(),
    }
}

/// Reads all of `reader`, requiring exactly `expected` bytes.
fn read_exactly(
    format: PayloadFormat,
    reader: impl Read,
    expected: usize,
) -> Result<Vec<u8>, Error> {
    let mut out = Vec::with_capacity(expected);
    reader
        .take(expected as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| fail(format, e.to_string()))?;
    if out.len() != expected {
        return Err(fail(
            format,
            format!("produced {} bytes, the image says {expected}", out.len()),
        ));
    }
    Ok(out)
}

fn lz4_legacy(stream: &[u8], expected: usize) -> Result<Vec<u8>, Error> {
    let f = PayloadFormat::Lz4;
    let mut out = vec![0u8; expected];
    let mut pos = 0usize;
    let mut rest = stream;
    while let Some((word, tail)) = rest.split_first_chunk::<4>() {
        let size = u32::from_le_bytes(*word);
        rest = tail;
        // Frames may be concatenated: each starts with the magic again.
        if size == LZ4_LEGACY_MAGIC {
            continue;
        }
        let size = size as usize;
        let (block, tail) = rest
            .split_at_checked(size)
            .ok_or_else(|| fail(f, "a block runs past the end of the payload"))?;
        rest = tail;
        let room = out
            .get_mut(pos..)
            .ok_or_else(|| fail(f, "output overflow"))?;
        let room_len = room.len().min(LZ4_LEGACY_BLOCK);
        let window = room.get_mut(..room_len).unwrap_or_default();
        let n = lz4_flex::block::decompress_into(block, window)
            .map_err(|e| fail(f, format!("block at output offset {pos}: {e}")))?;
        pos += n;
    }
    if !rest.is_empty() {
        return Err(fail(f, "trailing bytes after the last block"));
    }
    if pos != expected {
        return Err(fail(
            f,
            format!("produced {pos} bytes, the image says {expected}"),
        ));
    }
    Ok(out)
}

/// Decompresses a whole bzImage payload (including the appended size).
pub fn decompress_payload(payload: &[u8]) -> Result<Vec<u8>, Error> {
    let format = PayloadFormat::detect(payload);
    if !format.on_host() {
        return Err(fail(format, "not decompressed on the host"));
    }
    let (stream, size) = payload
        .split_last_chunk::<4>()
        .ok_or_else(|| fail(format, "payload too short"))?;
    let expected = u64::from(u32::from_le_bytes(*size));
    if expected == 0 || expected > MAX_UNCOMPRESSED {
        return Err(fail(
            format,
            format!("implausible uncompressed size {expected}"),
        ));
    }
    let expected = expected as usize;
    match format {
        // gzip's own trailer ends with ISIZE, so the whole payload is the stream.
        PayloadFormat::Gzip => {
            read_exactly(format, flate2::read::GzDecoder::new(payload), expected)
        }
        PayloadFormat::Xz => read_exactly(format, liblzma::read::XzDecoder::new(stream), expected),
        PayloadFormat::Zstd => {
            let decoder = ruzstd::decoding::StreamingDecoder::new_with_max_window_size(
                stream,
                MAX_UNCOMPRESSED,
            )
            .map_err(|e| fail(format, e.to_string()))?;
            read_exactly(format, decoder, expected)
        }
        PayloadFormat::Lz4 => {
            let frames = stream
                .strip_prefix(&LZ4_LEGACY_MAGIC.to_le_bytes())
                .ok_or_else(|| fail(format, "missing legacy frame magic"))?;
            lz4_legacy(frames, expected)
        }
        _ => Err(fail(format, "not decompressed on the host")),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::io::Write;

    use super::*;

    /// A payload as the kernel build makes it, in `format`.
    pub(crate) fn kernel_style_payload(format: PayloadFormat, data: &[u8]) -> Vec<u8> {
        let size = (data.len() as u32).to_le_bytes();
        let mut out = match format {
            PayloadFormat::Gzip => {
                let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
                e.write_all(data).unwrap();
                return e.finish().unwrap();
            }
            PayloadFormat::Xz => {
                // scripts/xz_wrap.sh: --check=crc32 --x86 --lzma2=dict=...
                let opts = liblzma::stream::LzmaOptions::new_preset(6).unwrap();
                let mut filters = liblzma::stream::Filters::new();
                filters.x86().lzma2(&opts);
                let stream = liblzma::stream::Stream::new_stream_encoder(
                    &filters,
                    liblzma::stream::Check::Crc32,
                )
                .unwrap();
                let mut e = liblzma::write::XzEncoder::new_stream(Vec::new(), stream);
                e.write_all(data).unwrap();
                e.finish().unwrap()
            }
            PayloadFormat::Zstd => {
                ruzstd::encoding::compress_to_vec(data, ruzstd::encoding::CompressionLevel::Fastest)
            }
            PayloadFormat::Lz4 => {
                // lz4 -l: the magic, then blocks of at most 8 MiB, each prefixed by its size.
                let mut v = LZ4_LEGACY_MAGIC.to_le_bytes().to_vec();
                for chunk in data.chunks(LZ4_LEGACY_BLOCK) {
                    let block = lz4_flex::block::compress(chunk);
                    v.extend_from_slice(&(block.len() as u32).to_le_bytes());
                    v.extend_from_slice(&block);
                }
                v
            }
            _ => panic!("no encoder for {format:?}"),
        };
        out.extend_from_slice(&size);
        out
    }

    fn sample() -> Vec<u8> {
        // Compressible but not trivial, with x86-looking call instructions for the BCJ filter.
        (0..300_000u32)
            .flat_map(|i| {
                if i % 97 == 0 {
                    vec![0xe8, (i >> 3) as u8, 0, 0, 0]
                } else {
                    vec![(i % 251) as u8]
                }
            })
            .collect()
    }

    #[test]
    fn every_host_format_round_trips_as_the_kernel_builds_it() {
        let data = sample();
        for format in [
            PayloadFormat::Gzip,
            PayloadFormat::Xz,
            PayloadFormat::Lz4,
            PayloadFormat::Zstd,
        ] {
            let payload = kernel_style_payload(format, &data);
            assert_eq!(PayloadFormat::detect(&payload), format);
            let out = decompress_payload(&payload).unwrap_or_else(|e| panic!("{format:?}: {e}"));
            assert!(out == data, "{format:?} output differs");
        }
    }

    #[test]
    fn lz4_with_several_blocks_and_concatenated_frames() {
        let data: Vec<u8> = (0..(LZ4_LEGACY_BLOCK + 12345))
            .map(|i| (i / 7) as u8)
            .collect();
        let mut payload = kernel_style_payload(PayloadFormat::Lz4, &data);
        // Insert a second frame magic between the two blocks.
        let first_len = u32::from_le_bytes(payload[4..8].try_into().unwrap()) as usize;
        let split = 8 + first_len;
        payload.splice(split..split, LZ4_LEGACY_MAGIC.to_le_bytes());
        assert!(decompress_payload(&payload).unwrap() == data);
    }

    #[test]
    fn a_wrong_size_or_corruption_is_an_error_not_a_panic() {
        let data = sample();
        for format in [
            PayloadFormat::Gzip,
            PayloadFormat::Xz,
            PayloadFormat::Lz4,
            PayloadFormat::Zstd,
        ] {
            let mut payload = kernel_style_payload(format, &data);
            let n = payload.len();
            // Claim one byte more than there is.
            let claimed = (data.len() as u32 + 1).to_le_bytes();
            let mut wrong = payload.clone();
            wrong[n - 4..].copy_from_slice(&claimed);
            assert!(
                decompress_payload(&wrong).is_err(),
                "{format:?} accepted a wrong size"
            );
            // Flip bytes in the middle of the stream.
            for b in &mut payload[n / 2..n / 2 + 16] {
                *b ^= 0x5a;
            }
            assert!(
                decompress_payload(&payload).is_err(),
                "{format:?} accepted corruption"
            );
            // Truncations at many points.
            for cut in [0, 1, 4, 5, 17, n / 3] {
                let _ = decompress_payload(&payload[..cut]);
            }
        }
    }

    #[test]
    fn absurd_sizes_are_refused() {
        let mut payload = kernel_style_payload(PayloadFormat::Zstd, b"x");
        let n = payload.len();
        payload[n - 4..].copy_from_slice(&0u32.to_le_bytes());
        assert!(
            decompress_payload(&payload)
                .unwrap_err()
                .to_string()
                .contains("implausible")
        );
    }

    #[test]
    fn formats_left_to_the_guest_are_recognised() {
        assert_eq!(PayloadFormat::detect(b"BZh91AY"), PayloadFormat::Bzip2);
        assert_eq!(
            PayloadFormat::detect(&[0x5d, 0, 0, 0x80]),
            PayloadFormat::Lzma
        );
        assert_eq!(
            PayloadFormat::detect(&[0x89, b'L', b'Z', b'O']),
            PayloadFormat::Lzo
        );
        assert!(!PayloadFormat::Bzip2.on_host());
        assert!(decompress_payload(b"BZh91AY....").is_err());
    }
}
