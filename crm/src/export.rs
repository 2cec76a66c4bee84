//! Exports: statistics as CSV and XLSX, and the monthly statistics report for the
//! quota-management agency (seed 9 and 11) as an XLSX workbook with a fixed layout:
//!
//! Sheet `月度统计报表`: A1 title; A2/B2 the month; from row 4 the summary (label in column A,
//! value in column B, rows fixed as in [`SUMMARY_ROWS`]); below, the tickets by kind.
//! Sheet `每日明细`: one row per day of the month with the statistics columns.
//! Sheet `坐席明细`: one row per agent, plus complaints and substantiated complaints.
//! Sheet `队列明细`: one row per queue.

use rust_xlsxwriter::{Format, FormatAlign, Workbook, Worksheet};

use crate::error::CrmResult;
use crate::stats::StatsRow;
use crate::store::MonthlyData;

/// Column headers of a statistics table.
pub const STATS_HEADERS: [&str; 17] = [
    "时段",
    "统计对象",
    "呼入量",
    "接通量",
    "放弃量",
    "短时放弃量",
    "接通率",
    "服务水平(20秒)",
    "平均应答时长(秒)",
    "平均处理时长(秒)",
    "最长等待时长(秒)",
    "示忙时长(秒)",
    "满意度参评数",
    "满意数",
    "满意率",
    "投诉量",
    "回访完成量",
];

/// A value of a statistics cell.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Text(String),
    Count(u64),
    Secs(Option<f64>),
    Rate(Option<f64>),
}

/// The cells of one row, in [`STATS_HEADERS`] order.
pub fn stats_cells(r: &StatsRow) -> Vec<Cell> {
    vec![
        Cell::Text(r.bucket.clone()),
        Cell::Text(r.key.clone()),
        Cell::Count(r.offered),
        Cell::Count(r.answered),
        Cell::Count(r.abandoned),
        Cell::Count(r.short_abandoned),
        Cell::Rate(r.answer_rate()),
        Cell::Rate(r.service_level()),
        Cell::Secs(r.asa_secs()),
        Cell::Secs(r.aht_secs()),
        Cell::Secs(Some(r.longest_wait_secs())),
        Cell::Secs(Some(r.not_ready_secs())),
        Cell::Count(r.surveys_rated),
        Cell::Count(r.surveys_satisfied),
        Cell::Rate(r.satisfaction_rate()),
        Cell::Count(r.complaints),
        Cell::Count(r.callbacks_done),
    ]
}

fn cell_text(c: &Cell) -> String {
    match c {
        Cell::Text(s) => s.clone(),
        Cell::Count(n) => n.to_string(),
        Cell::Secs(Some(s)) => format!("{s:.2}"),
        Cell::Rate(Some(r)) => format!("{:.2}%", r * 100.0),
        Cell::Secs(None) | Cell::Rate(None) => "-".into(),
    }
}

/// Statistics as CSV (UTF-8 with a BOM, so that Excel shows the Chinese headers).
pub fn stats_csv(rows: &[StatsRow]) -> CrmResult<Vec<u8>> {
    let mut w = csv::Writer::from_writer(Vec::from(*b"\xEF\xBB\xBF"));
    w.write_record(STATS_HEADERS)?;
    for r in rows {
        w.write_record(stats_cells(r).iter().map(cell_text))?;
    }
    w.flush()?;
    w.into_inner()
        .map_err(|e| crate::CrmError::Io(e.into_error()))
}

struct Formats {
    header: Format,
    rate: Format,
    secs: Format,
    title: Format,
}

fn formats() -> Formats {
    Formats {
        header: Format::new().set_bold().set_align(FormatAlign::Center),
        rate: Format::new().set_num_format("0.00%"),
        secs: Format::new().set_num_format("0.00"),
        title: Format::new()
            .set_bold()
            .set_font_size(14)
            .set_align(FormatAlign::Center),
    }
}

fn write_cell(ws: &mut Worksheet, f: &Formats, row: u32, col: u16, c: &Cell) -> CrmResult<()> {
    match c {
        Cell::Text(s) => ws.write_string(row, col, s)?,
        Cell::Count(n) => ws.write_number(row, col, *n as f64)?,
        Cell::Secs(Some(s)) => ws.write_number_with_format(row, col, *s, &f.secs)?,
        Cell::Rate(Some(r)) => ws.write_number_with_format(row, col, *r, &f.rate)?,
        Cell::Secs(None) | Cell::Rate(None) => ws.write_string(row, col, "-")?,
    };
    Ok(())
}

/// Writes a statistics table at `first_row` (headers, then rows); returns the next free row.
fn write_table(
    ws: &mut Worksheet,
    f: &Formats,
    first_row: u32,
    rows: &[StatsRow],
    extra_headers: &[&str],
    extra: &dyn Fn(&StatsRow) -> Vec<Cell>,
) -> CrmResult<u32> {
    for (i, h) in STATS_HEADERS.iter().chain(extra_headers).enumerate() {
        ws.write_string_with_format(first_row, i as u16, *h, &f.header)?;
        ws.set_column_width(i as u16, if i == 0 { 18 } else { 13 })?;
    }
    let mut row = first_row + 1;
    for r in rows {
        for (i, c) in stats_cells(r).iter().chain(extra(r).iter()).enumerate() {
            write_cell(ws, f, row, i as u16, c)?;
        }
        row += 1;
    }
    Ok(row)
}

/// Statistics as an XLSX workbook with one sheet.
pub fn stats_xlsx(rows: &[StatsRow], sheet_name: &str) -> CrmResult<Vec<u8>> {
    let mut wb = Workbook::new();
    let f = formats();
    let ws = wb.add_worksheet();
    ws.set_name(sheet_name)?;
    write_table(ws, &f, 0, rows, &[], &|_| Vec::new())?;
    Ok(wb.save_to_buffer()?)
}

/// The labels of the summary block of the monthly report, from row 5 (1-based) down.
pub const SUMMARY_ROWS: [&str; 15] = [
    "呼入总量",
    "人工接通量",
    "放弃量",
    "短时放弃量",
    "接通率",
    "服务水平(20秒内接通)",
    "平均应答时长(秒)",
    "平均处理时长(秒)",
    "最长等待时长(秒)",
    "坐席示忙时长(秒)",
    "满意度参评数",
    "满意率",
    "投诉量",
    "回访任务数",
    "回访完成量",
];

/// The title in cell A1.
pub const REPORT_TITLE: &str = "天津市小客车增量指标竞价咨询服务热线月度统计报表";

/// The monthly report workbook.
pub fn monthly_report_xlsx(d: &MonthlyData) -> CrmResult<Vec<u8>> {
    let mut wb = Workbook::new();
    let f = formats();
    let t = &d.total;
    {
        let ws = wb.add_worksheet();
        ws.set_name("月度统计报表")?;
        ws.set_column_width(0, 26)?;
        ws.set_column_width(1, 16)?;
        ws.set_column_width(2, 12)?;
        ws.merge_range(0, 0, 0, 2, REPORT_TITLE, &f.title)?;
        ws.write_string(1, 0, "统计月份")?;
        ws.write_string(1, 1, format!("{}年{}月", d.month.year, d.month.month))?;
        ws.write_string_with_format(3, 0, "一、话务与服务", &f.header)?;
        let values = [
            Cell::Count(t.offered),
            Cell::Count(t.answered),
            Cell::Count(t.abandoned),
            Cell::Count(t.short_abandoned),
            Cell::Rate(t.answer_rate()),
            Cell::Rate(t.service_level()),
            Cell::Secs(t.asa_secs()),
            Cell::Secs(t.aht_secs()),
            Cell::Secs(Some(t.longest_wait_secs())),
            Cell::Secs(Some(t.not_ready_secs())),
            Cell::Count(t.surveys_rated),
            Cell::Rate(t.satisfaction_rate()),
            Cell::Count(t.complaints),
            Cell::Count(d.callbacks_created.max(0) as u64),
            Cell::Count(d.callbacks_done.max(0) as u64),
        ];
        for (i, (label, v)) in SUMMARY_ROWS.iter().zip(values.iter()).enumerate() {
            let row = 4 + i as u32;
            ws.write_string(row, 0, *label)?;
            write_cell(ws, &f, row, 1, v)?;
        }
        let row = 4 + SUMMARY_ROWS.len() as u32 + 1;
        ws.write_string_with_format(row, 0, "二、工单", &f.header)?;
        ws.write_string_with_format(row + 1, 0, "类型", &f.header)?;
        ws.write_string_with_format(row + 1, 1, "本月受理", &f.header)?;
        ws.write_string_with_format(row + 1, 2, "本月办结", &f.header)?;
        for (i, (kind, created, closed)) in d.tickets.iter().enumerate() {
            let r = row + 2 + i as u32;
            ws.write_string(r, 0, kind.label_zh())?;
            ws.write_number(r, 1, *created as f64)?;
            ws.write_number(r, 2, *closed as f64)?;
        }
    }
    {
        let ws = wb.add_worksheet();
        ws.set_name("每日明细")?;
        let next = write_table(ws, &f, 0, &d.days, &[], &|_| Vec::new())?;
        let mut total = d.total.clone();
        total.bucket = "合计".into();
        for (i, c) in stats_cells(&total).iter().enumerate() {
            write_cell(ws, &f, next, i as u16, c)?;
        }
    }
    {
        let ws = wb.add_worksheet();
        ws.set_name("坐席明细")?;
        let counts = d.complaints.clone();
        write_table(
            ws,
            &f,
            0,
            &d.agents,
            &["属实投诉量"],
            &move |r: &StatsRow| {
                let sub = counts
                    .iter()
                    .find(|(a, _, _)| *a == r.key)
                    .map_or(0, |(_, _, s)| *s);
                vec![Cell::Count(sub.max(0) as u64)]
            },
        )?;
    }
    {
        let ws = wb.add_worksheet();
        ws.set_name("队列明细")?;
        write_table(ws, &f, 0, &d.queues, &[], &|_| Vec::new())?;
    }
    Ok(wb.save_to_buffer()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use calamine::{Data, Reader, Xlsx, open_workbook_from_rs};
    use std::io::Cursor;

    fn row() -> StatsRow {
        StatsRow {
            bucket: "2026-11-29".into(),
            key: "a1".into(),
            offered: 5,
            answered: 4,
            short_abandoned: 1,
            answered_within_sl: 2,
            wait_ms_answered: 60_000,
            handle_ms: 1_325_000,
            ..StatsRow::default()
        }
    }

    #[test]
    fn csv_has_bom_headers_and_formatted_values() {
        let bytes = stats_csv(&[row()]).unwrap();
        let text = String::from_utf8(bytes).unwrap();
        let mut lines = text.lines();
        assert_eq!(
            lines.next().unwrap(),
            format!("\u{feff}{}", STATS_HEADERS.join(","))
        );
        let l = lines.next().unwrap();
        assert!(
            l.starts_with("2026-11-29,a1,5,4,0,1,100.00%,50.00%,15.00,331.25,0.00,0.00,0,0,-,0,0"),
            "{l}"
        );
    }

    #[test]
    fn xlsx_reads_back() {
        let bytes = stats_xlsx(&[row()], "统计").unwrap();
        let mut wb: Xlsx<_> = open_workbook_from_rs(Cursor::new(bytes)).unwrap();
        let r = wb.worksheet_range("统计").unwrap();
        assert_eq!(r.get_value((0, 2)), Some(&Data::String("呼入量".into())));
        assert_eq!(r.get_value((1, 1)), Some(&Data::String("a1".into())));
        assert_eq!(r.get_value((1, 2)), Some(&Data::Float(5.0)));
        assert_eq!(r.get_value((1, 6)), Some(&Data::Float(1.0)));
        assert_eq!(r.get_value((1, 9)), Some(&Data::Float(331.25)));
        assert_eq!(r.get_value((1, 14)), Some(&Data::String("-".into())));
    }
}
