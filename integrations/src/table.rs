//! Reading the files we are handed into a plain table of text cells: CSV (UTF-8 or GBK,
//! detected or declared; comma or tab separated) or XLSX (first worksheet). Line numbers are
//! the ones a person sees when opening the file (1 = the header), so the import report can
//! point at them.

use std::io::Cursor;

use calamine::{Data, Reader, Xlsx};
use serde::{Deserialize, Serialize};

use crate::error::{IntegrationError, Result};
use crate::text::Date;

/// The text encoding of a CSV file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TextEncoding {
    /// A UTF-8 BOM or valid UTF-8 means UTF-8; anything else is read as GBK (GB 18030).
    #[default]
    Auto,
    Utf8,
    Gbk,
}

impl std::str::FromStr for TextEncoding {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().replace('-', "").as_str() {
            "auto" | "" => Ok(Self::Auto),
            "utf8" => Ok(Self::Utf8),
            "gbk" | "gb2312" | "gb18030" => Ok(Self::Gbk),
            other => Err(format!("不支持的编码 `{other}`（可选 auto、utf-8、gbk）")),
        }
    }
}

/// The container format of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileFormat {
    /// XLSX when the file starts like a ZIP archive, CSV otherwise.
    #[default]
    Auto,
    Csv,
    Xlsx,
}

impl std::str::FromStr for FileFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "auto" | "" => Ok(Self::Auto),
            "csv" | "txt" => Ok(Self::Csv),
            "xlsx" => Ok(Self::Xlsx),
            other => Err(format!("不支持的文件格式 `{other}`（可选 csv、xlsx）")),
        }
    }
}

/// One data row: its line number in the file and its cells, trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub line: u64,
    pub cells: Vec<String>,
}

impl Row {
    pub fn get(&self, col: Option<usize>) -> &str {
        col.and_then(|i| self.cells.get(i))
            .map_or("", String::as_str)
    }
}

/// A header and the data rows below it. Rows whose cells are all empty are left out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    pub header: Vec<String>,
    pub rows: Vec<Row>,
}

impl Table {
    /// The index of a header cell, compared without surrounding spaces.
    pub fn column(&self, name: &str) -> Option<usize> {
        let name = name.trim();
        self.header.iter().position(|h| h.trim() == name)
    }
}

/// Decodes CSV bytes to text.
pub fn decode_text(bytes: &[u8], encoding: TextEncoding) -> Result<String> {
    let (utf8_bom, rest) = match bytes.strip_prefix(b"\xEF\xBB\xBF") {
        Some(r) => (true, r),
        None => (false, bytes),
    };
    if rest.starts_with(b"\xFF\xFE") || rest.starts_with(b"\xFE\xFF") {
        return Err(IntegrationError::Unreadable(
            "UTF-16 文本不受支持，请另存为 UTF-8 或 GBK 编码的 CSV".into(),
        ));
    }
    let as_gbk = |b: &[u8]| {
        encoding_rs::GBK
            .decode_without_bom_handling_and_without_replacement(b)
            .map(|c| c.into_owned())
            .ok_or(IntegrationError::Encoding("GBK"))
    };
    match encoding {
        TextEncoding::Utf8 => std::str::from_utf8(rest)
            .map(str::to_string)
            .map_err(|_| IntegrationError::Encoding("UTF-8")),
        TextEncoding::Gbk => as_gbk(rest),
        TextEncoding::Auto => match std::str::from_utf8(rest) {
            Ok(s) => Ok(s.to_string()),
            Err(_) if utf8_bom => Err(IntegrationError::Encoding("UTF-8")),
            Err(_) => as_gbk(rest),
        },
    }
}

/// Reads a file of either format into a table.
pub fn read_table(bytes: &[u8], format: FileFormat, encoding: TextEncoding) -> Result<Table> {
    let is_zip = bytes.starts_with(b"PK\x03\x04");
    match format {
        FileFormat::Xlsx => read_xlsx(bytes),
        FileFormat::Auto if is_zip => read_xlsx(bytes),
        FileFormat::Csv | FileFormat::Auto => read_csv(&decode_text(bytes, encoding)?),
    }
}

/// Reads CSV text: comma separated, or tab separated when the header line has more tabs than
/// commas. Quoted fields may contain separators and line breaks (RFC 4180).
pub fn read_csv(text: &str) -> Result<Table> {
    let first = text.lines().next().unwrap_or("");
    let delimiter = if first.matches('\t').count() > first.matches(',').count() {
        b'\t'
    } else {
        b','
    };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter)
        .from_reader(text.as_bytes());
    let mut header = None;
    let mut rows = Vec::new();
    let mut record = csv::StringRecord::new();
    let (mut line, mut counted, mut prev_end) = (1u64, 0usize, 0usize);
    loop {
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                return Err(IntegrationError::Unreadable(format!(
                    "第 {line} 行 CSV 格式错误：{e}"
                )));
            }
        }
        // The record starts after the previous one's end and any blank lines (which the
        // csv crate skips); people count those lines, so count them from the bytes.
        let bytes = text.as_bytes();
        let mut start = prev_end;
        while start < bytes.len() && matches!(bytes[start], b'\r' | b'\n') {
            start += 1;
        }
        line += bytecount_newlines(&bytes[counted..start]);
        counted = start;
        prev_end = reader.position().byte() as usize;
        let cells: Vec<String> = record.iter().map(|c| c.trim().to_string()).collect();
        if header.is_none() {
            header = Some(cells);
        } else if cells.iter().any(|c| !c.is_empty()) {
            rows.push(Row { line, cells });
        }
    }
    let header = header.ok_or_else(|| IntegrationError::Unreadable("文件为空".into()))?;
    Ok(Table { header, rows })
}

fn bytecount_newlines(b: &[u8]) -> u64 {
    b.iter().filter(|&&c| c == b'\n').count() as u64
}

fn cell_text(d: &Data) -> String {
    match d {
        Data::Empty => String::new(),
        Data::String(s) => s.trim().to_string(),
        Data::Int(i) => i.to_string(),
        // Whole numbers (mobiles, amounts typed as numbers) without a trailing `.0`.
        Data::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", *f as i64),
        Data::Float(f) => f.to_string(),
        Data::Bool(b) => if *b { "是" } else { "否" }.to_string(),
        Data::DateTime(dt) => {
            let v = dt.as_f64();
            match Date::from_excel_serial(v) {
                Some(date) if v.fract() == 0.0 => date.iso(),
                Some(date) => {
                    let secs = ((v - v.floor()) * 86_400.0).round() as u32;
                    format!(
                        "{} {:02}:{:02}:{:02}",
                        date.iso(),
                        secs / 3600,
                        secs / 60 % 60,
                        secs % 60
                    )
                }
                None => v.to_string(),
            }
        }
        Data::DateTimeIso(s) | Data::DurationIso(s) => s.replace('T', " "),
        Data::Error(e) => format!("#{e:?}"),
    }
}

/// Reads the first worksheet of an XLSX workbook.
pub fn read_xlsx(bytes: &[u8]) -> Result<Table> {
    let mut book = Xlsx::new(Cursor::new(bytes))
        .map_err(|e| IntegrationError::Unreadable(format!("不是有效的 XLSX 文件：{e}")))?;
    let range = book
        .worksheet_range_at(0)
        .ok_or_else(|| IntegrationError::Unreadable("工作簿中没有工作表".into()))?
        .map_err(|e| IntegrationError::Unreadable(format!("无法读取工作表：{e}")))?;
    let first_row = range.start().map_or(0, |(r, _)| u64::from(r));
    let mut header = None;
    let mut rows = Vec::new();
    for (i, r) in range.rows().enumerate() {
        let cells: Vec<String> = r.iter().map(cell_text).collect();
        let line = first_row + i as u64 + 1;
        if header.is_none() {
            if cells.iter().any(|c| !c.is_empty()) {
                header = Some(cells);
            }
        } else if cells.iter().any(|c| !c.is_empty()) {
            rows.push(Row { line, cells });
        }
    }
    let header = header.ok_or_else(|| IntegrationError::Unreadable("工作表为空".into()))?;
    Ok(Table { header, rows })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_encodings() {
        let text = "申请编码,姓名\n1,张三\n";
        let (gbk, _, _) = encoding_rs::GBK.encode(text);
        assert_eq!(
            decode_text(text.as_bytes(), TextEncoding::Auto).unwrap(),
            text
        );
        assert_eq!(decode_text(&gbk, TextEncoding::Auto).unwrap(), text);
        assert_eq!(decode_text(&gbk, TextEncoding::Gbk).unwrap(), text);
        assert!(decode_text(&gbk, TextEncoding::Utf8).is_err());
        let mut bom = b"\xEF\xBB\xBF".to_vec();
        bom.extend_from_slice(text.as_bytes());
        assert_eq!(decode_text(&bom, TextEncoding::Auto).unwrap(), text);
        assert!(decode_text(b"\xFF\xFEa\0", TextEncoding::Auto).is_err());
    }

    #[test]
    fn reads_csv_with_quotes_tabs_and_blank_lines() {
        let t = read_csv("a,b\n1,\"x,y\"\n\n,\n2,\"multi\nline\"\n3,z\n").unwrap();
        assert_eq!(t.header, vec!["a", "b"]);
        let lines: Vec<u64> = t.rows.iter().map(|r| r.line).collect();
        assert_eq!(lines, vec![2, 5, 7]);
        assert_eq!(t.rows[0].cells[1], "x,y");
        let t = read_csv("a,b\r\n1,2\r\n\r\n3,4\r\n").unwrap();
        let lines: Vec<u64> = t.rows.iter().map(|r| r.line).collect();
        assert_eq!(lines, vec![2, 4]);
        let t = read_csv("a\tb\n1\t2,3\n").unwrap();
        assert_eq!(t.rows[0].cells, vec!["1", "2,3"]);
        assert_eq!(t.column(" b "), Some(1));
    }
}
