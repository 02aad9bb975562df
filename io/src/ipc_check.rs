//! A check of Arrow IPC messages before arrow's decoder sees them: the sizes their compressed
//! buffers declare.
//!
//! A compressed IPC buffer starts with the length it decompresses to (a little-endian `i64`),
//! and arrow's decoder allocates that much before decompressing. A damaged message (or one
//! whose checksum was forged) can declare any length, and an allocation of exabytes does not
//! fail as an error: the process aborts. Spill files and cache entries are checksummed, so
//! this needs damage that keeps the checksum; fuzzing found it at once by computing the
//! checksums. The check rejects what no codec can produce: zstd expands a frame at most
//! 32,768-fold (a block holds at most 128 KiB and takes at least four bytes), LZ4 at most
//! 255-fold. A length within those bounds is allocated as declared; decompression then fails
//! with an error if the data disagrees.

use arrow::ipc::{root_as_message, CompressionType, MessageHeader};

/// Largest expansion of a zstd frame (a 128 KiB RLE block in four bytes).
const ZSTD_MAX_RATIO: u64 = 32_768;
/// Largest expansion of an LZ4 frame.
const LZ4_MAX_RATIO: u64 = 255;
/// Slack for frame headers on tiny buffers.
const SLACK: u64 = 1024;

/// Check every encapsulated IPC message in `bytes` (one or several, each metadata then body,
/// as a stream or a file block holds them): each compressed buffer must lie inside its
/// message's body and declare a decompressed length its codec can produce. `Err` says what is
/// wrong; messages that are not record or dictionary batches pass unchecked.
pub fn check_ipc_messages(mut bytes: &[u8]) -> Result<(), String> {
    while !bytes.is_empty() {
        let split = split_message(bytes)?;
        check_message(split.meta, split.body)?;
        bytes = split.rest;
    }
    Ok(())
}

/// The first message of some bytes, and what follows it.
struct Split<'a> {
    meta: &'a [u8],
    body: &'a [u8],
    rest: &'a [u8],
}

/// The metadata, body and what follows of the first message in `bytes`.
fn split_message(bytes: &[u8]) -> Result<Split<'_>, String> {
    let word = |at: usize| -> Result<i32, String> {
        bytes
            .get(at..at + 4)
            .map(|w| i32::from_le_bytes([w[0], w[1], w[2], w[3]]))
            .ok_or_else(|| "a message is cut short".to_string())
    };
    // The continuation marker is optional (the pre-1.0 format has none).
    let (len_at, prefix) = if word(0)? == -1 { (4, 8) } else { (0, 4) };
    let meta_len = usize::try_from(word(len_at)?).map_err(|_| "a negative metadata length")?;
    let meta_end = prefix + meta_len;
    let meta = bytes
        .get(prefix..meta_end)
        .ok_or("a message's metadata runs past its end")?;
    if meta_len == 0 {
        // The end-of-stream marker.
        return Ok(Split {
            meta,
            body: &[],
            rest: &bytes[meta_end..],
        });
    }
    let message = root_as_message(meta).map_err(|e| format!("unreadable message: {e}"))?;
    let body_len = usize::try_from(message.bodyLength()).map_err(|_| "a negative body length")?;
    let body = meta_end
        .checked_add(body_len)
        .and_then(|end| bytes.get(meta_end..end))
        .ok_or("a message's body runs past its end")?;
    Ok(Split {
        meta,
        body,
        rest: &bytes[meta_end + body_len..],
    })
}

fn check_message(meta: &[u8], body: &[u8]) -> Result<(), String> {
    if meta.is_empty() {
        return Ok(());
    }
    let message = root_as_message(meta).map_err(|e| format!("unreadable message: {e}"))?;
    let batch = match message.header_type() {
        MessageHeader::RecordBatch => message.header_as_record_batch(),
        MessageHeader::DictionaryBatch => {
            message.header_as_dictionary_batch().and_then(|d| d.data())
        }
        _ => None,
    };
    let Some(batch) = batch else {
        return Ok(());
    };
    let Some(compression) = batch.compression() else {
        return Ok(());
    };
    let ratio = match compression.codec() {
        CompressionType::ZSTD => ZSTD_MAX_RATIO,
        CompressionType::LZ4_FRAME => LZ4_MAX_RATIO,
        other => return Err(format!("unknown compression codec {other:?}")),
    };
    for buffer in batch.buffers().into_iter().flatten() {
        let (offset, length) = (buffer.offset(), buffer.length());
        let range = usize::try_from(offset)
            .ok()
            .zip(usize::try_from(length).ok())
            .and_then(|(o, l)| Some(o..o.checked_add(l)?))
            .filter(|r| r.end <= body.len())
            .ok_or_else(|| {
                format!(
                    "a buffer ({length} bytes at {offset}) lies outside the message body ({} \
                     bytes)",
                    body.len()
                )
            })?;
        let data = &body[range];
        let Some(head) = data.get(..8) else {
            // Empty buffers carry no length prefix.
            continue;
        };
        let declared = i64::from_le_bytes([
            head[0], head[1], head[2], head[3], head[4], head[5], head[6], head[7],
        ]);
        if declared == -1 {
            continue; // stored uncompressed
        }
        let compressed = (data.len() - 8) as u64;
        let possible = compressed.saturating_mul(ratio).saturating_add(SLACK);
        if declared < 0 || declared as u64 > possible {
            return Err(format!(
                "a compressed buffer of {compressed} bytes declares {declared} bytes \
                 decompressed (at most {possible} are possible)"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use arrow::array::{Int64Array, RecordBatch, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};
    use arrow::ipc::writer::{IpcWriteOptions, StreamWriter};

    /// The stream bytes of two batches, zstd-compressed, and where the second batch's
    /// message starts.
    fn stream() -> (Vec<u8>, usize) {
        let schema = Arc::new(Schema::new(vec![
            Field::new("a", DataType::Int64, true),
            Field::new("s", DataType::Utf8, true),
        ]));
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![
                Arc::new(Int64Array::from_iter_values(0..1000)),
                Arc::new(StringArray::from_iter_values(
                    (0..1000).map(|i| format!("v{i}")),
                )),
            ],
        )
        .unwrap();
        let options = IpcWriteOptions::default()
            .try_with_compression(Some(CompressionType::ZSTD))
            .unwrap();
        let mut writer = StreamWriter::try_new_with_options(Vec::new(), &schema, options).unwrap();
        writer.write(&batch).unwrap();
        writer.flush().unwrap();
        let first = writer.get_ref().len();
        writer.write(&batch).unwrap();
        writer.finish().unwrap();
        (writer.into_inner().unwrap(), first)
    }

    #[test]
    fn messages_as_written_pass() {
        let (bytes, _) = stream();
        check_ipc_messages(&bytes).unwrap();
    }

    #[test]
    fn an_impossible_decompressed_length_is_refused() {
        let (mut bytes, second) = stream();
        // The first buffer of the last batch with a compressed length prefix: find the
        // batch's body (after its metadata) and scan for the first prefix that is not -1.
        let split = split_message(&bytes[second..]).unwrap();
        let body_start =
            second + (split.body.as_ptr() as usize - bytes[second..].as_ptr() as usize);
        let message = root_as_message(split.meta).unwrap();
        let batch = message.header_as_record_batch().unwrap();
        let buffer = batch
            .buffers()
            .unwrap()
            .iter()
            .find(|b| {
                let at = body_start + b.offset() as usize;
                b.length() >= 8 && bytes[at..at + 8] != (-1i64).to_le_bytes()
            })
            .expect("a compressed buffer");
        let at = body_start + buffer.offset() as usize;
        bytes[at..at + 8].copy_from_slice(&(1i64 << 61).to_le_bytes());
        let err = check_ipc_messages(&bytes).unwrap_err();
        assert!(err.contains("declares 2305843009213693952 bytes"), "{err}");
        // A buffer outside its body is refused too.
        assert!(check_ipc_messages(&bytes[..bytes.len() - 20]).is_err());
    }
}
