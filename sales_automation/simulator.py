"""Try a Sales Automation Rule on recent orders before trusting it: the rule as it stands on its form
(saved or not, changed or not), on the last submitted Sales Orders the caller may read. For each order:
whether the rule matches and why, or which condition it fails (the rule's own `evaluate`), and which
rule would take the order instead (rules.find_rule with this rule in its place). For one order: the
one call's dry run of its cycle with this rule (api/cycle.py), rolled back whole.

Nothing is saved: no rule, run, document or idempotency record."""

import frappe
from frappe import _
from frappe.model.document import Document
from frappe.utils import cint, getdate, now_datetime

from sales_automation import gate, rules
from sales_automation.api.contract import endpoint
from sales_automation.api.cycle import run_engine
from sales_automation.api.handling import handle
from sales_automation.api.orders import existing_order
from sales_automation.api.validation import invalid, json_argument
from sales_automation.settings import get_settings

RULE = "Sales Automation Rule"
FILTERS = ("customer", "company", "from_date", "to_date")
DEFAULT_LIMIT = 20
MAX_LIMIT = 100
ORDER_FIELDS = (
	"name",
	"transaction_date",
	"customer",
	"customer_name",
	"company",
	"currency",
	"grand_total",
	"status",
)


@endpoint(methods=["GET", "POST"])
def simulate_rule(rule: dict | str, filters: dict | str | None = None, limit: int = DEFAULT_LIMIT) -> dict:
	"""The last `limit` submitted Sales Orders the caller may read, newest first (filters: customer,
	company, from_date, to_date on the order date), each with the rule's verdict on it.

	`rule`: a rule's name, or the rule as a document (its form, saved or not)."""
	rule = rule_to_simulate(rule)
	filters = check_filters(json_argument("filters", filters))
	limit = check_limit(limit)
	frappe.has_permission("Sales Order", "read", throw=True)
	sales_orders = frappe.get_list(
		"Sales Order",
		filters=order_filters(filters),
		fields=list(ORDER_FIELDS),
		order_by="transaction_date desc, creation desc",
		limit_page_length=limit,
	)
	return {
		"rule": rule.name,
		"enabled": cint(rule.enabled),
		"priority": cint(rule.priority),
		"automation_enabled": bool(cint(get_settings().enabled)),
		"filters": filters,
		"limit": limit,
		"orders": [{**row, **verdict(rule, frappe.get_doc("Sales Order", row.name))} for row in sales_orders],
	}


@endpoint(methods=["POST"])
def preview_order(rule: dict | str, sales_order: str) -> dict:
	"""The dry run of one submitted order's cycle with `rule` (as in simulate_rule), whether it matches
	or not: the documents, totals, GL and stock ledger entries and errors of run_sales_cycle's dry run,
	and the rule's `verdict` on the order. Everything is rolled back, the caller's transaction with it."""
	rule = rule_to_simulate(rule)
	# the one call's dry run: the order's lock, read permission and gate (existing_order), the caller's
	# create and submit permissions and the engine (run_engine), the rollback and error shape (handle)
	return handle("preview_order", {"dry_run": 1}, None, lambda: dry_run(rule, sales_order))


def dry_run(rule: Document, sales_order_name: str) -> dict:
	sales_order = existing_order(sales_order_name)
	order_verdict = verdict(rule, sales_order)
	reason = order_verdict["reason"] or _("Rule {0} was tried although it does not match: {1}").format(
		rule.name, order_verdict["unmet_condition"]
	)
	preview = run_engine(sales_order, rule, reason, None, None, dry_run=True)
	return {**preview, "verdict": order_verdict}


def verdict(rule: Document, sales_order: Document) -> dict:
	"""Whether `rule` matches the order, why or which condition fails, and which rule would take it."""
	reason, unmet_condition = rule.evaluate(sales_order)
	winner, winner_reason = rules.find_rule(sales_order, candidate=rule)
	refused = gate.refusal(sales_order)
	matches = reason is not None
	return {
		"matches": matches,
		"reason": reason,
		"unmet_condition": unmet_condition,
		# an enabled rule that matches loses the order only to a rule tried before it
		"shadowed_by": winner if matches and cint(rule.enabled) and winner != rule.name else None,
		"winner": winner,
		"winner_reason": winner_reason,
		"would_run": winner == rule.name and not refused,
		"refusal": refused[1] if refused else None,
	}


def rule_to_simulate(rule: dict | str) -> Document:
	"""The rule to try, never saved: a saved rule by name, or a rule as a document (its form, saved or
	not), checked by the rule's own validate() (InvalidRuleError naming the field)."""
	frappe.has_permission(RULE, "read", throw=True)
	if isinstance(rule, str) and not rule.lstrip().startswith("{"):
		if not frappe.db.exists(RULE, rule):
			invalid("rule", _("Sales Automation Rule {0} does not exist").format(rule))
		frappe.has_permission(RULE, "read", doc=rule, throw=True)
		return frappe.get_doc(RULE, rule)
	values = json_argument("rule", rule)
	if not isinstance(values, dict) or values.get("doctype", RULE) != RULE:
		invalid("rule", _("give a rule's name or a Sales Automation Rule as an object"))
	identity = values.get("name") or values.get("rule_name")
	saved = (
		frappe.db.get_value(RULE, identity, ["name", "creation"], as_dict=True)
		if isinstance(identity, str) and identity
		else None
	)
	if saved:
		frappe.has_permission(RULE, "read", doc=saved.name, throw=True)
	document = frappe.get_doc({**rule_fields(values), "doctype": RULE})
	if saved:
		# a changed version of a saved rule: tried in the saved one's place
		document.name, document.creation = saved.name, saved.creation
	else:
		document.name = new_rule_name(document, identity)
		document.creation = now_datetime()  # the newest rule: after the others of its priority
		document.set("__islocal", 1)  # unsaved: a run previewed with it names no rule
	document._fix_numeric_types()  # a form post sends numbers and checks as text
	document.validate()
	return document


def rule_fields(values: dict) -> dict:
	"""The rule's own fields from what the caller sent (the form's doc carries more: name, __islocal,
	__last_sync_on...), each a single value."""
	fields = {}
	for df in frappe.get_meta(RULE).fields:
		value = values.get(df.fieldname)
		if isinstance(value, dict | list):
			invalid(f"rule.{df.fieldname}", _("must be a single value"))
		if value is not None:
			fields[df.fieldname] = value
	return fields


def new_rule_name(document: Document, identity) -> str:
	"""The name an unsaved rule shows under: its Rule Name unless a saved rule has it."""
	if document.rule_name and not frappe.db.exists(RULE, document.rule_name):
		return document.rule_name
	return identity if isinstance(identity, str) and identity else _("New Rule")


def check_filters(filters) -> dict:
	if filters is None:
		return {}
	if not isinstance(filters, dict):
		invalid("filters", _("must be an object with any of {0}").format(", ".join(FILTERS)))
	checked = {}
	for key, value in filters.items():
		if key not in FILTERS:
			invalid(f"filters.{key}", _("is not a filter; use {0}").format(", ".join(FILTERS)))
		if value in (None, ""):
			continue
		if not isinstance(value, str):
			invalid(f"filters.{key}", _("must be a string"))
		if key in ("from_date", "to_date"):
			try:
				value = str(getdate(value))
			except Exception:
				invalid(f"filters.{key}", _("must be a date (YYYY-MM-DD)"))
		checked[key] = value
	return checked


def check_limit(limit) -> int:
	if isinstance(limit, bool) or not str(limit).strip().isdigit() or not 1 <= int(limit) <= MAX_LIMIT:
		invalid("limit", _("must be a whole number from 1 to {0}").format(MAX_LIMIT))
	return int(limit)


def order_filters(filters: dict) -> list:
	conditions = [["docstatus", "=", 1]]
	for key in ("customer", "company"):
		if filters.get(key):
			conditions.append([key, "=", filters[key]])
	if filters.get("from_date"):
		conditions.append(["transaction_date", ">=", filters["from_date"]])
	if filters.get("to_date"):
		conditions.append(["transaction_date", "<=", filters["to_date"]])
	return conditions
