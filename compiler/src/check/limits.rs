//! Rate-limit checking: a `rate …` atom in, a [`Limit`] (and its [`Cond::Limit`]) out;
//! plus where a limit may stand (the last `and` of a rule) and whether its key fields can
//! be present when the rest of the rule holds; and a rule's `log` clause, whose events
//! are rate-limited by a limit of its own.

use super::names;
use super::Checker;
use crate::diagnostic::{Code, Diagnostic, Span};
use crate::fields::{Field, Proto};
use crate::program::limit::{
    Limit, LimitOp, Unit, DEFAULT_BUCKETS, MAX_BUCKETS, MAX_CAPACITY, NS_PER_MINUTE, NS_PER_SECOND,
};
use crate::program::log::{Log, DEFAULT_LOG_BYTES, LOG_BURST, LOG_RATE, MAX_LOG_BYTES};
use crate::program::{CmpOp, Cond, LimitId};
use crate::syntax::ast::{Expr, Ident, LimitExpr, LogClause, LogRate};

/// E0030: a rate, burst or bucket count that is zero, too large, or in the wrong unit.
pub(crate) const BAD_LIMIT: Code = Code("E0030");
/// E0031: a rate limit anywhere but last in a rule's top-level `and`.
pub(crate) const MISPLACED_LIMIT: Code = Code("E0031");
/// E0032: a key field that cannot be present when the rest of the rule holds.
pub(crate) const BAD_LIMIT_KEY: Code = Code("E0032");

impl Checker {
    /// Checks one `rate …` atom.
    pub(super) fn limit(&mut self, expr: &LimitExpr) -> Option<Cond> {
        let op = match expr.op {
            CmpOp::Gt => Some(LimitOp::Over),
            CmpOp::Le => Some(LimitOp::Within),
            other => {
                self.diagnostics.push(
                    Diagnostic::error(
                        BAD_LIMIT,
                        format!("`rate {}` is not a rate limit", other.as_str()),
                        expr.op_span,
                        "use `>` or `<=`",
                    )
                    .with_note("`rate > R` holds for packets over the rate, `rate <= R` for those within it"),
                );
                None
            }
        };
        let unit = self.unit(expr.unit.as_ref());
        let period_ns = match expr.period.text.as_str() {
            "m" | "minute" => NS_PER_MINUTE,
            _ => NS_PER_SECOND,
        };
        let rate = self.amount(expr.amount, unit.map_or(1, |(_, scale)| scale), "rate");
        let burst = match &expr.burst {
            None => rate,
            Some((number, span, burst_unit)) => {
                // Without a unit, the burst counts the rate's units (`rate > 10 kbytes/s
                // burst 20` holds 20 kbytes).
                let burst_unit = match burst_unit {
                    Some(ident) => self.unit(Some(ident)),
                    None => unit,
                };
                if let (Some((rate_kind, _)), Some((burst_kind, _))) = (unit, burst_unit) {
                    if rate_kind != burst_kind {
                        self.bad(*span, "the burst counts other units than the rate", "packets and bytes do not mix");
                        return None;
                    }
                }
                self.amount((*number, *span), burst_unit.map_or(1, |(_, scale)| scale), "burst")
            }
        };
        let buckets = match expr.buckets {
            None => Some(DEFAULT_BUCKETS),
            Some((Some(n), _)) if (1..=u128::from(MAX_BUCKETS)).contains(&n) => Some(n as u32),
            Some((number, span)) => {
                if number.is_some() {
                    self.bad(span, format!("a limit keeps 1 to {MAX_BUCKETS} buckets"), "out of range");
                }
                None
            }
        };
        let key = self.key(&expr.key)?;
        let (op, (unit, _), rate, burst, buckets) = (op?, unit?, rate?, burst?, buckets?);
        if burst.checked_mul(period_ns).map_or(true, |capacity| capacity > MAX_CAPACITY) {
            let span = expr.burst.as_ref().map_or(expr.amount.1, |burst| burst.1);
            self.bad(span, "the burst is too large", "burst × period must stay within 2^62 ns·units");
            return None;
        }
        let id = LimitId(self.limits.len() as u32);
        self.limits.push(Limit { op, unit, rate, period_ns, burst, key, buckets, span: expr.span });
        Some(Cond::Limit(id))
    }

    /// The unit and its multiplier (`None` when written wrong: reported).
    fn unit(&mut self, ident: Option<&Ident>) -> Option<(Unit, u64)> {
        Some(match ident.map(|ident| ident.text.as_str()) {
            None | Some("packets") => (Unit::Packets, 1),
            Some("bytes") => (Unit::Bytes, 1),
            Some("kbytes") => (Unit::Bytes, 1_000),
            Some("mbytes") => (Unit::Bytes, 1_000_000),
            Some(other) => {
                let span = ident.map_or(Span::default(), |ident| ident.span);
                self.bad(span, format!("unknown unit `{other}`"), "packets, bytes, kbytes or mbytes");
                return None;
            }
        })
    }

    /// A rate or burst: at least 1, at most 2^32 − 1 after scaling.
    fn amount(&mut self, (number, span): (Option<u128>, Span), scale: u64, what: &str) -> Option<u64> {
        let number = number?;
        let scaled = number.saturating_mul(u128::from(scale));
        if scaled == 0 || scaled > u128::from(u32::MAX) {
            let message = match scale {
                1 => format!("a {what} must be between 1 and {} units", u32::MAX),
                // `5000 mbytes` is in range as written; say what it comes to.
                _ => {
                    format!("a {what} must be between 1 and {} bytes (about 4.29 GB); this is {scaled} bytes", u32::MAX)
                }
            };
            self.bad(span, message, "out of range");
            return None;
        }
        Some(scaled as u64)
    }

    fn bad(&mut self, span: Span, message: impl Into<String>, label: &str) {
        self.diagnostics.push(Diagnostic::error(BAD_LIMIT, message, span, label));
    }

    /// The concrete key fields of `per …`: surface fields stand for each of theirs.
    fn key(&mut self, written: &[Ident]) -> Option<Vec<Field>> {
        let mut key: Vec<Field> = Vec::new();
        let mut ok = true;
        for ident in written {
            match names::surface_field(&ident.text) {
                Some(surface) => {
                    for field in surface.fields {
                        if !key.contains(field) {
                            key.push(*field);
                        }
                    }
                }
                None => {
                    ok = false;
                    self.diagnostics.push(Diagnostic::error(
                        BAD_LIMIT_KEY,
                        format!("unknown key field `{}`", ident.text),
                        ident.span,
                        "no such field",
                    ));
                }
            }
        }
        ok.then_some(key)
    }

    /// Reports limits that are not the last operand of the rule's top-level `and`, and
    /// key fields that the rest of the rule rules out. `written` is the rule's condition.
    pub(super) fn limit_placement(&mut self, written: &Expr, checked: &mut Cond) {
        let (before, last): (&[Expr], Option<&Expr>) = match written {
            Expr::Limit(_) => (&[], Some(written)),
            Expr::And(operands, _) => match operands.split_last() {
                Some((last @ Expr::Limit(_), before)) => (before, Some(last)),
                _ => (operands, None),
            },
            _ => (std::slice::from_ref(written), None),
        };
        let mut misplaced = Vec::new();
        before.iter().for_each(|expr| limits_in(expr, &mut misplaced));
        for span in misplaced {
            self.diagnostics.push(
                Diagnostic::error(MISPLACED_LIMIT, "a rate limit must be the last `and` of a rule", span, "here")
                    .with_note("write it at the end: `rule r: drop if CONDITION and rate > 10/s`"),
            );
        }
        if let (Some(Expr::Limit(expr)), Cond::And(operands)) = (last, &mut *checked) {
            let required = required_protocols(&operands[..operands.len() - 1]);
            if let Some(Cond::Limit(id)) = operands.last() {
                self.prune_key(*id, &required, expr);
            }
        }
        let placed = match (last, &*checked) {
            (Some(Expr::Limit(expr)), Cond::And(operands)) => match operands.last() {
                Some(Cond::Limit(id)) => Some((*id, expr)),
                _ => None,
            },
            (Some(Expr::Limit(expr)), Cond::Limit(id)) => Some((*id, expr)),
            _ => None,
        };
        if let Some((id, expr)) = placed {
            self.key_size(id, expr);
        }
    }

    /// At most 16 concrete key fields, counted once the rest of the rule has excluded
    /// those of other families (`tcp and rate … per l4.dport` counts `tcp.dport` alone).
    fn key_size(&mut self, id: LimitId, expr: &LimitExpr) {
        let fields = self.limits[id.0 as usize].key.len();
        if fields > MAX_KEY_FIELDS {
            let written = &expr.key;
            let span = written.first().map_or(Span::default(), |first| first.span.to(written[written.len() - 1].span));
            self.diagnostics.push(
                Diagnostic::error(
                    BAD_LIMIT_KEY,
                    format!("a key has at most {MAX_KEY_FIELDS} concrete fields"),
                    span,
                    "too many",
                )
                .with_note(format!("these stand for {fields} concrete fields on the packets the rule sees")),
            );
        }
    }

    /// Drops key fields of another family than the rule requires; none left is E0032.
    fn prune_key(&mut self, id: LimitId, required: &[Proto], expr: &LimitExpr) {
        let limit = &mut self.limits[id.0 as usize];
        let possible = |field: &Field| field.guard().map_or(true, |guard| compatible(guard, required));
        for ident in &expr.key {
            let Some(surface) = names::surface_field(&ident.text) else { continue };
            if !surface.fields.iter().any(possible) {
                let names: Vec<&str> = required.iter().map(|proto| proto.name()).collect();
                self.diagnostics.push(
                    Diagnostic::error(
                        BAD_LIMIT_KEY,
                        format!("`{}` is never present when the rule matches", ident.text),
                        ident.span,
                        "absent on every packet this rule sees",
                    )
                    .with_note(format!("the rule requires {}", names.join(", "))),
                );
            }
        }
        limit.key.retain(possible);
    }
}

/// The most concrete fields a limit's key may have.
const MAX_KEY_FIELDS: usize = 16;

/// Spans of every limit inside `expr`.
fn limits_in(expr: &Expr, out: &mut Vec<Span>) {
    match expr {
        Expr::Limit(limit) => out.push(limit.span),
        Expr::Or(operands, _) | Expr::And(operands, _) => operands.iter().for_each(|e| limits_in(e, out)),
        Expr::Not(operand, _) => limits_in(operand, out),
        Expr::Test(_) | Expr::Pcap(..) => {}
    }
}

/// Protocols every packet satisfying all of `operands` has, with their carriers.
fn required_protocols(operands: &[Cond]) -> Vec<Proto> {
    let mut required = Vec::new();
    let mut add = |proto: Proto| {
        let mut next = Some(proto);
        while let Some(proto) = next {
            if !required.contains(&proto) {
                required.push(proto);
            }
            next = proto.carrier();
        }
    };
    for operand in operands {
        match operand {
            Cond::Proto(proto) => add(*proto),
            Cond::Test(test) => {
                if let Some(guard) = test.field.guard() {
                    add(guard);
                }
            }
            _ => {}
        }
    }
    required
}

/// Whether a packet can have `proto` (and its carriers) along with all of `required`.
fn compatible(proto: Proto, required: &[Proto]) -> bool {
    let mut next = Some(proto);
    while let Some(p) = next {
        if required.iter().any(|r| r.layer() == p.layer() && *r != p && p.layer() != crate::fields::Layer::Tag) {
            return false;
        }
        next = p.carrier();
    }
    true
}

/// E0035: a `log` clause keeping more frame bytes than an event holds.
pub(crate) const BAD_LOG: Code = Code("E0035");

impl Checker {
    /// Checks a rule's `log [BYTES]`: `Some(Some(log))` when valid (its rate limit added
    /// to the program's limits), `None` when reported.
    pub(super) fn log(&mut self, clause: &LogClause) -> Option<Option<Log>> {
        let bytes = match clause.bytes {
            None => DEFAULT_LOG_BYTES,
            Some((Some(bytes), _)) if bytes <= u128::from(MAX_LOG_BYTES) => bytes as u16,
            Some((number, span)) => {
                if number.is_some() {
                    self.diagnostics.push(
                        Diagnostic::error(
                            BAD_LOG,
                            format!("a log event keeps 0 to {MAX_LOG_BYTES} bytes of the frame"),
                            span,
                            "out of range",
                        )
                        .with_note(format!(
                            "`log` alone keeps {DEFAULT_LOG_BYTES} bytes; `log 0` only the event header"
                        )),
                    );
                }
                return None;
            }
        };
        let (rate, period_ns, burst) = match &clause.rate {
            None => (LOG_RATE, NS_PER_SECOND, LOG_BURST),
            Some(written) => self.log_rate(written)?,
        };
        let limit = LimitId(self.limits.len() as u32);
        self.limits.push(Limit {
            op: LimitOp::Within,
            unit: Unit::Packets,
            rate,
            period_ns,
            burst,
            key: Vec::new(),
            buckets: 1,
            span: clause.span,
        });
        Some(Some(Log { bytes, limit, span: clause.span }))
    }

    /// A `log … rate N/PERIOD [burst N]`: (events a period, period, burst), E0030 when a
    /// number is zero or too large (`None`: reported).
    fn log_rate(&mut self, written: &LogRate) -> Option<(u64, u64, u64)> {
        let period_ns = match written.period.text.as_str() {
            "m" | "minute" => NS_PER_MINUTE,
            _ => NS_PER_SECOND,
        };
        let rate = self.amount(written.amount, 1, "log rate");
        // Without `burst`, one period's worth, as for rate limits.
        let burst = match written.burst {
            None => rate,
            Some(burst) => self.amount(burst, 1, "log burst"),
        };
        let (rate, burst) = (rate?, burst?);
        if burst.checked_mul(period_ns).map_or(true, |capacity| capacity > MAX_CAPACITY) {
            let span = written.burst.map_or(written.amount.1, |burst| burst.1);
            self.bad(span, "the log burst is too large", "burst × period must stay within 2^62 ns·units");
            return None;
        }
        Some((rate, period_ns, burst))
    }
}
