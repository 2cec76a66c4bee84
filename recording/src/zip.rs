//! A minimal ZIP writer (PKWARE APPNOTE 6.3.x, §4.3): stored entries (no compression — WAV
//! barely compresses and evidence should be byte-identical), UTF-8 names, CRC-32, no ZIP64
//! (exports are a few megabytes). Enough for the evidence export of a recording.

use hotline_core::UnixMillis;

#[derive(Debug)]
pub struct ZipWriter {
    out: Vec<u8>,
    central: Vec<u8>,
    entries: u16,
    time: u16,
    date: u16,
}

fn u16le(v: &mut Vec<u8>, x: u16) {
    v.extend_from_slice(&x.to_le_bytes());
}

fn u32le(v: &mut Vec<u8>, x: u32) {
    v.extend_from_slice(&x.to_le_bytes());
}

/// MS-DOS date and time (local time in the format; we write UTC).
fn dos_time(at: UnixMillis) -> (u16, u16) {
    let (y, m, d) = crate::archive::civil_date(at);
    let secs = at.div_euclid(1000).rem_euclid(86_400);
    let (h, mi, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let time = ((h as u16) << 11) | ((mi as u16) << 5) | ((s / 2) as u16);
    let year = (y.clamp(1980, 2107) - 1980) as u16;
    let date = (year << 9) | ((m as u16) << 5) | d as u16;
    (time, date)
}

impl ZipWriter {
    /// Entries are stamped with `at`.
    pub fn new(at: UnixMillis) -> Self {
        let (time, date) = dos_time(at);
        Self {
            out: Vec::new(),
            central: Vec::new(),
            entries: 0,
            time,
            date,
        }
    }

    pub fn add(&mut self, name: &str, data: &[u8]) {
        let crc = crc32fast::hash(data);
        let offset = self.out.len() as u32;
        let size = data.len() as u32;
        let name_b = name.as_bytes();
        // local file header
        let o = &mut self.out;
        u32le(o, 0x0403_4b50);
        u16le(o, 20); // version needed: 2.0
        u16le(o, 0x0800); // bit 11: UTF-8 names
        u16le(o, 0); // stored
        u16le(o, self.time);
        u16le(o, self.date);
        u32le(o, crc);
        u32le(o, size);
        u32le(o, size);
        u16le(o, name_b.len() as u16);
        u16le(o, 0);
        o.extend_from_slice(name_b);
        o.extend_from_slice(data);
        // central directory record
        let c = &mut self.central;
        u32le(c, 0x0201_4b50);
        u16le(c, 0x0314); // made by: Unix, 2.0
        u16le(c, 20);
        u16le(c, 0x0800);
        u16le(c, 0);
        u16le(c, self.time);
        u16le(c, self.date);
        u32le(c, crc);
        u32le(c, size);
        u32le(c, size);
        u16le(c, name_b.len() as u16);
        u16le(c, 0); // extra
        u16le(c, 0); // comment
        u16le(c, 0); // disk
        u16le(c, 0); // internal attributes
        u32le(c, 0o100_644 << 16); // external: regular file, rw-r--r--
        u32le(c, offset);
        c.extend_from_slice(name_b);
        self.entries += 1;
    }

    pub fn finish(mut self) -> Vec<u8> {
        let cd_offset = self.out.len() as u32;
        let cd_size = self.central.len() as u32;
        self.out.extend_from_slice(&self.central);
        let o = &mut self.out;
        u32le(o, 0x0605_4b50);
        u16le(o, 0);
        u16le(o, 0);
        u16le(o, self.entries);
        u16le(o, self.entries);
        u32le(o, cd_size);
        u32le(o, cd_offset);
        u16le(o, 0);
        self.out
    }
}

/// Reads the entries of a ZIP written by [`ZipWriter`] (stored entries only), checking each
/// CRC. For tests and for checking an export.
pub fn read_stored(zip: &[u8]) -> Option<Vec<(String, Vec<u8>)>> {
    let eocd = zip.len().checked_sub(22)?;
    if zip.get(eocd..eocd + 4)? != [0x50, 0x4b, 0x05, 0x06] {
        return None;
    }
    let u16_at = |i: usize| -> Option<usize> {
        Some(u16::from_le_bytes(zip.get(i..i + 2)?.try_into().ok()?) as usize)
    };
    let u32_at = |i: usize| -> Option<usize> {
        Some(u32::from_le_bytes(zip.get(i..i + 4)?.try_into().ok()?) as usize)
    };
    let n = u16_at(eocd + 10)?;
    let mut p = u32_at(eocd + 16)?;
    let mut out = Vec::new();
    for _ in 0..n {
        if u32_at(p)? != 0x0201_4b50 {
            return None;
        }
        let crc = u32_at(p + 16)? as u32;
        let size = u32_at(p + 20)?;
        let name_len = u16_at(p + 28)?;
        let skip = u16_at(p + 30)? + u16_at(p + 32)?;
        let local = u32_at(p + 42)?;
        let name = String::from_utf8(zip.get(p + 46..p + 46 + name_len)?.to_vec()).ok()?;
        let data_at = local + 30 + u16_at(local + 26)? + u16_at(local + 28)?;
        let data = zip.get(data_at..data_at + size)?.to_vec();
        if crc32fast::hash(&data) != crc {
            return None;
        }
        out.push((name, data));
        p += 46 + name_len + skip;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_unzip_accepts_it() {
        let mut z = ZipWriter::new(1_764_000_000_000);
        z.add("recording.wav", &[1, 2, 3, 4]);
        z.add("审阅.json", b"{\"a\":1}");
        z.add("empty.txt", b"");
        let bytes = z.finish();
        let entries = read_stored(&bytes).unwrap();
        assert_eq!(entries.len(), 3);
        assert_eq!(entries[0], ("recording.wav".to_string(), vec![1, 2, 3, 4]));
        assert_eq!(entries[1].0, "审阅.json");
        let mut bad = bytes.clone();
        bad[31 + "recording.wav".len()] ^= 0xff; // a data byte of the first entry
        assert!(read_stored(&bad).is_none());
        // The system's unzip, where there is one, agrees.
        if std::path::Path::new("/usr/bin/unzip").exists() {
            let dir = tempfile::tempdir().unwrap();
            let p = dir.path().join("t.zip");
            std::fs::write(&p, &bytes).unwrap();
            let st = std::process::Command::new("/usr/bin/unzip")
                .arg("-tq")
                .arg(&p)
                .output()
                .unwrap();
            assert!(
                st.status.success(),
                "{}",
                String::from_utf8_lossy(&st.stdout)
            );
        }
    }

    #[test]
    fn dos_time_fields() {
        // 2025-11-24 16:00:00 UTC
        let (t, d) = dos_time(1_764_000_000_000);
        assert_eq!(t >> 11, 16);
        assert_eq!(d >> 9, 45);
        assert_eq!((d >> 5) & 15, 11);
        assert_eq!(d & 31, 24);
    }
}
