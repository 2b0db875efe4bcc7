"""What the endpoints look up and check before the engine runs: the rule they follow (a saved one, or
the default), the existing document or order under its lock and the gate, the order made from a
payload."""

import copy
import re

import frappe
from frappe import _
from frappe.utils import cint, flt

from erpnext import get_default_company

from sales_automation import cached_values, engine, gate, locks, progress
from sales_automation.api.validation import check_order, check_receiving_account, invalid, raise_state
from sales_automation.settings import prefetch_cycle_settings

# The default when no rule matches: the Sales Automation Rule's own field defaults (deliver, invoice
# from the Delivery Note, everything submitted, reference = order name), plus paying in full.
DEFAULT_RULE = {"create_payment_entry": 1}


def load_rule(rule_name):
	if not isinstance(rule_name, str) or not frappe.db.exists("Sales Automation Rule", rule_name):
		invalid("rule", _("Sales Automation Rule {0} does not exist").format(rule_name))
	rule = frappe.get_doc("Sales Automation Rule", rule_name)
	if not rule.enabled:
		invalid("rule", _("Sales Automation Rule {0} is disabled").format(rule_name))
	return rule


def default_rule(**overrides):
	"""An unsaved rule with the DocType's own defaults (never a user's: it has no conditions)."""
	rule = frappe.get_doc(
		{"doctype": "Sales Automation Rule", **rule_defaults(), **DEFAULT_RULE, **overrides}
	)
	rule.rule_name = _("Default")
	return rule


def rule_defaults() -> dict:
	"""The field defaults of Sales Automation Rule, typed: cheaper than new_doc, which also looks up the
	user's defaults and permissions for every field."""
	defaults = {}
	for df in frappe.get_meta("Sales Automation Rule").fields:
		if df.default is None or df.fieldtype in ("Section Break", "Column Break", "Tab Break"):
			continue
		defaults[df.fieldname] = cint(df.default) if df.fieldtype in ("Check", "Int") else df.default
	return defaults


def existing_document(doctype: str, name, field: str):
	if not isinstance(name, str) or not frappe.db.exists(doctype, name):
		error = frappe.DoesNotExistError(_("{0}: {1} {2} does not exist").format(field, _(doctype), name))
		error.field = field
		raise error
	document = frappe.get_doc(doctype, name)
	document.check_permission("read")
	return document


def lock_order(name):
	"""One actor per order: concurrent calls for the same order wait here (409 after a while)."""
	if isinstance(name, str) and name:
		locks.take(name, timeout=engine.order_lock_wait())


def existing_order(name, submit_draft: bool = False):
	lock_order(name)  # before anything about the order is read
	sales_order = existing_document("Sales Order", name, "sales_order")
	refused = gate.refusal(sales_order, allow_draft=submit_draft)
	if refused:
		field, reason = refused
		raise_state(field, _("Sales Order {0}: {1}").format(sales_order.name, reason))
	if sales_order.docstatus == 0:
		sales_order.flags.skip_sales_automation = True
		sales_order.submit()
	return sales_order


def order_is_done(sales_order) -> bool:
	"""Delivered, billed and paid, whatever a rule asks (progress.what_is_left with no rule)."""
	return not progress.what_is_left(engine.order_state(sales_order.name))


def delivery_note_order(delivery_note: str) -> str:
	document = existing_document("Delivery Note", delivery_note, "delivery_note")
	if document.docstatus != 1:
		raise_state("delivery_note", _("Delivery Note {0} is not submitted").format(delivery_note))
	order_name = next((row.against_sales_order for row in document.items if row.against_sales_order), None)
	if not order_name:
		invalid("delivery_note", _("Delivery Note {0} is not linked to a Sales Order").format(delivery_note))
	return order_name


def invoice_of_delivery_note(delivery_note: str):
	if flt(frappe.db.get_value("Delivery Note", delivery_note, "per_billed")) < 100:
		return None
	return engine.linked_document(engine.SALES_INVOICE, "delivery_note", delivery_note, docstatus=1)


def create_order(order: dict, payment: dict | None = None):
	"""Insert and submit a Sales Order from a payload in ERPNext's own field names (`payment`: the call's,
	whose receiving account is checked against the order's company before the order is made)."""
	cached_values.prefetch()  # before the checks, which read the metadata of the order and its rows
	check_order(order)
	# the company the order will have: ERPNext fills an empty one with the user's default
	check_receiving_account(payment, order.get("company") or get_default_company())
	prefetch_cycle_settings()
	# a copy: frappe.get_doc writes into the caller's row dicts, which would change the request's fingerprint
	sales_order = frappe.get_doc({**copy.deepcopy(order), "doctype": "Sales Order"})
	sales_order.flags.skip_sales_automation = True
	try:
		sales_order.submit()  # inserts and submits in one save
	except frappe.ValidationError as exc:
		# ERPNext's own refusal of the order: answered as a 422 naming the field where it can be told
		if not getattr(exc, "field", None):
			exc.field = payload_field(order, engine.error_message(exc))
		raise
	check_priced(order, sales_order)
	lock_order(sales_order.name)  # nobody else can see it yet: granted at once, held until commit
	return sales_order


def check_priced(order: dict, sales_order):
	"""Refuse a line that came to a rate of 0 because it has no price (no `rate` sent, no Item Price in
	the order's price list): a 0.00 order, invoice and payment would otherwise pass as Completed. A free
	line says so with `rate: 0`. The caller's transaction, the order with it, is rolled back."""
	for idx, (sent, row) in enumerate(zip(order["items"], sales_order.items, strict=False)):
		if flt(row.rate) or flt(row.price_list_rate) or "rate" in sent:
			continue
		invalid(
			f"order.items[{idx}].rate",
			_(
				"{0} has no price in Price List {1}, so the line would be 0.00: send its rate (rate 0 for a free line) or add an Item Price"
			).format(row.item_code, sales_order.selling_price_list),
		)


ROW_NUMBER = re.compile(r"\brow\s*#?\s*(\d+)", re.IGNORECASE)


def payload_field(order: dict, message: str) -> str | None:
	"""The payload's field an ERPNext validation message is about: `order.<field>` or
	`order.items[i].<field>`, found by the row number the message names and the field whose value or
	label it quotes (a value counts more than a label: "Warehouse Stores - X does not belong to ...")."""
	text = message.lower()
	items = [row for row in order.get("items") or [] if isinstance(row, dict)]
	scopes = [("order", "Sales Order", order)]
	scopes += [(f"order.items[{idx}]", "Sales Order Item", row) for idx, row in enumerate(items)]
	row_number = ROW_NUMBER.search(message)
	if row_number and 1 <= int(row_number.group(1)) <= len(items):
		scopes = [scopes[int(row_number.group(1))]]
	best, best_score = None, None
	for path, doctype, values in scopes:
		meta = frappe.get_meta(doctype)
		for key, value in values.items():
			df = meta.get_field(key)
			if not df or isinstance(value, list | dict):
				continue
			value_at = (
				text.find(value.strip().lower()) if isinstance(value, str) and len(value.strip()) > 1 else -1
			)
			label = _(df.label or "").lower()
			label_at = text.find(label) if label else -1
			if label_at < 0:
				label_at = text.find(key.replace("_", " "))
			# a quoted value counts more than the field's name; then what the message names first (its
			# subject: "Warehouse X does not belong to company Y"); then the longer label ("Delivery Date")
			points = 2 * (value_at >= 0) + (label_at >= 0)
			first = min(at for at in (value_at, label_at, len(text)) if at >= 0)
			score = (points, -first, len(label) if label_at >= 0 else 0)
			if points and (best is None or score > best_score):
				best, best_score = f"{path}.{key}", score
	if best:
		return best
	return scopes[0][0] if row_number and len(scopes) == 1 else None
