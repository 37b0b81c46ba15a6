//! Audio files that tests and benchmarks build from nothing: a tone as WAV and FLAC, silence as
//! MP3, each well formed and with the length markers that the checks hold decoding against.

/// A WAVE file of 16-bit mono PCM: a 440 Hz tone of `samples` samples.
pub fn wav(samples: u32) -> Vec<u8> {
	let data_len = samples * 2;
	let mut bytes = Vec::new();
	bytes.extend_from_slice(b"RIFF");
	bytes.extend_from_slice(&(36 + data_len).to_le_bytes());
	bytes.extend_from_slice(b"WAVEfmt ");
	bytes.extend_from_slice(&16u32.to_le_bytes());
	bytes.extend_from_slice(&1u16.to_le_bytes()); // PCM
	bytes.extend_from_slice(&1u16.to_le_bytes()); // mono
	bytes.extend_from_slice(&8000u32.to_le_bytes());
	bytes.extend_from_slice(&16000u32.to_le_bytes());
	bytes.extend_from_slice(&2u16.to_le_bytes());
	bytes.extend_from_slice(&16u16.to_le_bytes());
	bytes.extend_from_slice(b"data");
	bytes.extend_from_slice(&data_len.to_le_bytes());
	for sample in tone(samples) {
		bytes.extend_from_slice(&sample.to_le_bytes());
	}
	bytes
}

/// A 440 Hz tone sampled at 8 kHz, as 16-bit samples.
pub fn tone(samples: u32) -> Vec<i16> {
	(0..samples)
		.map(|n| ((n as f32 * 440.0 * 2.0 * std::f32::consts::PI / 8000.0).sin() * 8000.0) as i16)
		.collect()
}

/// CRC-8 (polynomial 0x07) of a FLAC frame header.
fn crc8(bytes: &[u8]) -> u8 {
	bytes.iter().fold(0u8, |crc, &byte| {
		(0..8).fold(crc ^ byte, |c, _| if c & 0x80 != 0 { (c << 1) ^ 0x07 } else { c << 1 })
	})
}

/// CRC-16 (polynomial 0x8005) of a whole FLAC frame.
fn crc16(bytes: &[u8]) -> u16 {
	bytes.iter().fold(0u16, |crc, &byte| {
		(0..8).fold(crc ^ (u16::from(byte) << 8), |c, _| {
			if c & 0x8000 != 0 {
				(c << 1) ^ 0x8005
			} else {
				c << 1
			}
		})
	})
}

/// A FLAC file of the tone, 16-bit mono at 8 kHz, in frames of `block` samples stored
/// verbatim, with STREAMINFO declaring the total (FLAC format specification, RFC 9639).
pub fn flac(samples: u32, block: u16) -> Vec<u8> {
	let mut bytes = b"fLaC".to_vec();
	bytes.extend_from_slice(&[0x80, 0, 0, 34]); // the last metadata block: STREAMINFO, 34 bytes
	bytes.extend_from_slice(&block.to_be_bytes()); // smallest block
	bytes.extend_from_slice(&block.to_be_bytes()); // largest block
	bytes.extend_from_slice(&[0; 6]); // frame sizes unknown
								   // 20 bits of sample rate, 3 of channels − 1, 5 of bits per sample − 1, 36 of samples.
	let packed = (8000u64 << 44) | (15u64 << 36) | u64::from(samples);
	bytes.extend_from_slice(&packed.to_be_bytes());
	bytes.extend_from_slice(&[0; 16]); // no MD5
	for (index, chunk) in tone(samples).chunks(usize::from(block)).enumerate() {
		let mut frame = vec![0xff, 0xf8, 0x70, 0x00, index as u8];
		frame.extend_from_slice(&(chunk.len() as u16 - 1).to_be_bytes());
		frame.push(crc8(&frame));
		frame.push(0x02); // a verbatim subframe
		for sample in chunk {
			frame.extend_from_slice(&sample.to_be_bytes());
		}
		frame.extend_from_slice(&crc16(&frame).to_be_bytes());
		bytes.extend(frame);
	}
	bytes
}

/// An MP3 of `frames` frames of silence (MPEG-1 Layer III, 128 kbit/s, 44.1 kHz, mono: every
/// frame 417 bytes, its side information zero), after an Info frame that declares the count,
/// as LAME writes one.
pub fn mp3(frames: u32) -> Vec<u8> {
	let mut info = vec![0; MP3_FRAME];
	info[..4].copy_from_slice(&MP3_HEADER);
	info[21..25].copy_from_slice(b"Info"); // after the 17 bytes of mono side information
	info[25..29].copy_from_slice(&1u32.to_be_bytes()); // the frame count is present
	info[29..33].copy_from_slice(&frames.to_be_bytes());
	let mut bytes = info;
	bytes.extend(mp3_without_info(frames));
	bytes
}

/// [`mp3`] with no Info frame: nothing in the file says how many frames it has.
pub fn mp3_without_info(frames: u32) -> Vec<u8> {
	let mut bytes = Vec::new();
	for _ in 0..frames {
		let mut frame = vec![0; MP3_FRAME];
		frame[..4].copy_from_slice(&MP3_HEADER);
		bytes.extend(frame);
	}
	bytes
}

/// Bytes in each frame of [`mp3`].
pub const MP3_FRAME: usize = 417;
const MP3_HEADER: [u8; 4] = [0xff, 0xfb, 0x90, 0xc0];
