//! Window functions in SQL: `f(...) [IGNORE NULLS] OVER (...)`, named windows (`WINDOW w AS
//! (...)`, `OVER w`, `OVER (w ORDER BY ...)`), and the planning of a `SELECT`'s window calls
//! into window nodes.
//!
//! Frames get SQL's defaults here, so plans always carry an explicit one. The window calls of
//! a `SELECT` (in its select list, `QUALIFY` and `ORDER BY`) are computed after `GROUP BY` and
//! `HAVING` by [`crate::frontend::windows::Windows`].

use std::collections::HashMap;

use sqlparser::ast::{self, NamedWindowExpr, WindowType};

use super::expr::sort_key;
use super::literals::normalize_ident;
use super::{not_supported, SqlPlanner};
use crate::error::{EngineError, Result};
use crate::eval::constant::fold_expr;
use crate::logical::expr::{Expr, WindowExpr};
use crate::logical::schema::PlanSchema;
use crate::logical::window::{FrameBound, FrameUnits, WindowFrame, WindowFunction};

impl SqlPlanner<'_> {
    /// The named windows of a `SELECT`'s `WINDOW` clause, each resolved to a full
    /// specification (a definition may name an earlier one).
    pub(super) fn named_windows(
        &self,
        definitions: &[ast::NamedWindowDefinition],
    ) -> Result<HashMap<String, ast::WindowSpec>> {
        let mut out: HashMap<String, ast::WindowSpec> = HashMap::new();
        for ast::NamedWindowDefinition(name, expr) in definitions {
            let key = normalize_ident(name);
            if out.contains_key(&key) {
                return Err(EngineError::Plan(format!("window {key} is defined twice")));
            }
            let spec = match expr {
                NamedWindowExpr::NamedWindow(base) => lookup(&out, base)?.clone(),
                NamedWindowExpr::WindowSpec(spec) => inherit(&out, spec)?,
            };
            out.insert(key, spec);
        }
        Ok(out)
    }

    /// `func(args) OVER over` as a window call over `schema`.
    pub(super) fn window_call(
        &self,
        func: WindowFunction,
        args: Vec<Expr>,
        over: &WindowType,
        ignore_nulls: bool,
        schema: &PlanSchema,
    ) -> Result<Expr> {
        let spec = match over {
            WindowType::NamedWindow(name) => lookup(&self.windows, name)?.clone(),
            WindowType::WindowSpec(spec) => inherit(&self.windows, spec)?,
        };
        let ast::WindowSpec {
            window_name: _,
            partition_by,
            order_by,
            window_frame,
        } = &spec;
        let partition_by = partition_by
            .iter()
            .map(|e| self.sql_to_expr(e, schema))
            .collect::<Result<Vec<_>>>()?;
        let order_by = order_by
            .iter()
            .map(|o| {
                if o.with_fill.is_some() {
                    return Err(not_supported("WITH FILL in a window's ORDER BY", o));
                }
                Ok(sort_key(self.sql_to_expr(&o.expr, schema)?, o))
            })
            .collect::<Result<Vec<_>>>()?;
        let frame = match window_frame {
            Some(frame) => self.frame(frame)?,
            None => WindowFrame::default_for(!order_by.is_empty()),
        };
        // A frame given to a ranking or offset function means nothing to it (as in SQL).
        Ok(Expr::Window(Box::new(WindowExpr {
            func,
            args,
            partition_by,
            order_by,
            frame,
            ignore_nulls,
        })))
    }

    fn frame(&self, frame: &ast::WindowFrame) -> Result<WindowFrame> {
        let ast::WindowFrame {
            units,
            start_bound,
            end_bound,
        } = frame;
        let units = match units {
            ast::WindowFrameUnits::Rows => FrameUnits::Rows,
            ast::WindowFrameUnits::Range => FrameUnits::Range,
            ast::WindowFrameUnits::Groups => FrameUnits::Groups,
        };
        let bound = |b: &ast::WindowFrameBound| -> Result<FrameBound> {
            Ok(match b {
                ast::WindowFrameBound::CurrentRow => FrameBound::CurrentRow,
                ast::WindowFrameBound::Preceding(None) => FrameBound::UnboundedPreceding,
                ast::WindowFrameBound::Following(None) => FrameBound::UnboundedFollowing,
                ast::WindowFrameBound::Preceding(Some(e))
                | ast::WindowFrameBound::Following(Some(e)) => {
                    let value = match fold_expr(self.sql_to_expr(e, &PlanSchema::default())?)? {
                        Expr::Literal(v) => v,
                        other => {
                            return Err(EngineError::Plan(format!(
                                "a window frame offset must be a constant, not {other}"
                            )))
                        }
                    };
                    if matches!(b, ast::WindowFrameBound::Preceding(_)) {
                        FrameBound::Preceding(value)
                    } else {
                        FrameBound::Following(value)
                    }
                }
            })
        };
        Ok(WindowFrame {
            units,
            start: bound(start_bound)?,
            end: match end_bound {
                Some(b) => bound(b)?,
                None => FrameBound::CurrentRow,
            },
        })
    }
}

fn lookup<'m>(
    windows: &'m HashMap<String, ast::WindowSpec>,
    name: &ast::Ident,
) -> Result<&'m ast::WindowSpec> {
    let key = normalize_ident(name);
    windows.get(&key).ok_or_else(|| {
        let mut known: Vec<&String> = windows.keys().collect();
        known.sort();
        EngineError::Plan(format!(
            "window {key} is not defined{}",
            if known.is_empty() {
                " (the SELECT has no WINDOW clause)".to_string()
            } else {
                format!(
                    " (defined: {})",
                    known
                        .iter()
                        .map(|k| k.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
        ))
    })
}

/// `spec` with the window it names (`OVER (w ORDER BY ...)`) filled in: the named window's
/// partitioning, its ordering unless `spec` orders, and `spec`'s frame. As in SQL, `spec` may
/// not partition again, nor order a window that is already ordered, nor extend one with a frame.
fn inherit(
    windows: &HashMap<String, ast::WindowSpec>,
    spec: &ast::WindowSpec,
) -> Result<ast::WindowSpec> {
    let Some(name) = &spec.window_name else {
        return Ok(spec.clone());
    };
    let base = lookup(windows, name)?;
    if !spec.partition_by.is_empty() {
        return Err(EngineError::Plan(format!(
            "a window based on {name} cannot have its own PARTITION BY"
        )));
    }
    if !spec.order_by.is_empty() && !base.order_by.is_empty() {
        return Err(EngineError::Plan(format!(
            "a window based on {name} cannot order it again: {name} has an ORDER BY"
        )));
    }
    if base.window_frame.is_some() {
        return Err(EngineError::Plan(format!(
            "window {name} has a frame, so no other window can be based on it"
        )));
    }
    Ok(ast::WindowSpec {
        window_name: None,
        partition_by: base.partition_by.clone(),
        order_by: if spec.order_by.is_empty() {
            base.order_by.clone()
        } else {
            spec.order_by.clone()
        },
        window_frame: spec.window_frame.clone(),
    })
}
