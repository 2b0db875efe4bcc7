"""Checks of the endpoints' input: every refusal is a 422 (or 409 for a state) naming the field."""

import json
from datetime import date

import frappe
from frappe import _
from frappe.utils import flt

from sales_automation.engine import DELIVERY_NOTE, PAYMENT_ENTRY, SALES_INVOICE
from sales_automation.exceptions import InvalidRequestError, InvalidStateError

STEP_KEYS = {"delivery_note": DELIVERY_NOTE, "sales_invoice": SALES_INVOICE, "payment_entry": PAYMENT_ENTRY}
PAYMENT_KEYS = ("mode_of_payment", "reference_no", "reference_date", "amount")
ORDER_READ_ONLY = {"name", "docstatus", "amended_from", "owner", "creation", "modified", "modified_by", "idx"}


def json_argument(field: str, value):
	"""An object or list argument, also when a form post sends it as JSON text."""
	if not isinstance(value, str):
		return value
	try:
		return json.loads(value) if value.strip() else None
	except ValueError:
		invalid(field, _("is not valid JSON"))


def invalid(field: str, message: str):
	error = InvalidRequestError(_("{0}: {1}").format(field, message))
	error.field = field
	frappe.local.message_log = []
	frappe.msgprint(str(error), title=_("Invalid Request"), indicator="red")
	raise error


def raise_state(field: str, message: str):
	error = InvalidStateError(message)
	error.field = field
	frappe.msgprint(message, title=_("Not Possible"), indicator="red")
	raise error


def check_steps(steps) -> list[str] | None:
	if steps is None:
		return None
	if not isinstance(steps, list) or not steps:
		invalid("steps", _("must be a non-empty list of {0}").format(", ".join(STEP_KEYS)))
	for step in steps:
		if step not in STEP_KEYS:
			invalid("steps", _("unknown step {0}; use {1}").format(frappe.bold(step), ", ".join(STEP_KEYS)))
	return [STEP_KEYS[step] for step in STEP_KEYS if step in steps]


def check_payment(payment):
	if payment is None:
		return
	if not isinstance(payment, dict):
		invalid("payment", _("must be an object"))
	for key in payment:
		if key not in PAYMENT_KEYS:
			invalid(f"payment.{key}", _("unknown field; use {0}").format(", ".join(PAYMENT_KEYS)))
	if "amount" in payment:
		if not is_number(payment["amount"]) or flt(payment["amount"]) <= 0:
			invalid("payment.amount", _("must be a number greater than 0"))
	if payment.get("mode_of_payment") and not frappe.db.exists("Mode of Payment", payment["mode_of_payment"]):
		invalid(
			"payment.mode_of_payment",
			_("Mode of Payment {0} does not exist").format(payment["mode_of_payment"]),
		)
	if "reference_date" in payment:
		check_date("payment.reference_date", payment["reference_date"])
	if "reference_no" in payment and not (
		isinstance(payment["reference_no"], str) and 0 < len(payment["reference_no"]) <= 140
	):
		invalid("payment.reference_no", _("must be a string of 1 to 140 characters"))


def check_item_row(path: str, row, has_date: bool):
	if not isinstance(row, dict):
		invalid(path, _("must be an object"))
	check_fields(path, "Sales Order Item", row)
	item_code = row.get("item_code")
	if not item_code:
		invalid(f"{path}.item_code", _("is required"))
	if not isinstance(item_code, str) or not frappe.db.exists("Item", item_code):
		invalid(f"{path}.item_code", _("Item {0} does not exist").format(item_code))
	if frappe.db.get_value("Item", item_code, "disabled"):
		invalid(f"{path}.item_code", _("Item {0} is disabled").format(item_code))
	if "qty" not in row:
		invalid(f"{path}.qty", _("is required"))
	if not is_number(row["qty"]) or flt(row["qty"]) <= 0:
		invalid(f"{path}.qty", _("must be a number greater than 0"))
	for field in ("rate", "price_list_rate", "discount_percentage"):
		if field in row and (not is_number(row[field]) or flt(row[field]) < 0):
			invalid(f"{path}.{field}", _("must be a number of at least 0"))
	check_link(f"{path}.warehouse", "Warehouse", row.get("warehouse"))
	check_link(f"{path}.uom", "UOM", row.get("uom"))
	if "delivery_date" in row:
		check_date(f"{path}.delivery_date", row["delivery_date"])
	elif not has_date:
		invalid(f"{path}.delivery_date", _("is required when the order has no delivery_date"))


def check_fields(path: str, doctype: str, values: dict):
	meta = frappe.get_meta(doctype)
	for key, value in values.items():
		if key == "doctype":
			continue
		if key in ORDER_READ_ONLY:
			invalid(f"{path}.{key}", _("cannot be set by the caller"))
		df = meta.get_field(key)
		if not df:
			invalid(f"{path}.{key}", _("is not a field of {0}").format(_(doctype)))
		if df.fieldtype in ("Table", "Table MultiSelect"):
			if not isinstance(value, list):
				invalid(f"{path}.{key}", _("must be a list"))
			if key != "items":
				for idx, row in enumerate(value):
					if not isinstance(row, dict):
						invalid(f"{path}.{key}[{idx}]", _("must be an object"))
					check_fields(f"{path}.{key}[{idx}]", df.options, row)
		elif df.fieldtype in ("Float", "Currency", "Percent", "Int", "Check") and value is not None:
			if not is_number(value):
				invalid(f"{path}.{key}", _("must be a number"))
		elif (
			df.fieldtype in ("Data", "Link", "Select", "Small Text", "Text", "Date", "Datetime")
			and value is not None
		):
			if not isinstance(value, str):
				invalid(f"{path}.{key}", _("must be a string"))


def check_link(path: str, doctype: str, value):
	if value in (None, ""):
		return
	if not isinstance(value, str) or not frappe.db.exists(doctype, value):
		invalid(path, _("{0} {1} does not exist").format(_(doctype), value))
	if doctype == "Warehouse" and frappe.db.get_value("Warehouse", value, "is_group"):
		invalid(path, _("Warehouse {0} is a group; use a leaf warehouse").format(value))


def check_date(path: str, value):
	try:
		date.fromisoformat(value)
	except (TypeError, ValueError):
		invalid(path, _("must be a date as YYYY-MM-DD"))


def is_number(value) -> bool:
	return isinstance(value, int | float) and not isinstance(value, bool)


def check_order(order):
	"""Refuse an order payload ERPNext would store wrongly or not at all, naming the field."""
	if not isinstance(order, dict):
		invalid("order", _("must be an object"))
	check_fields("order", "Sales Order", order)
	if order.get("doctype") not in (None, "Sales Order"):
		invalid("order.doctype", _("must be Sales Order"))
	customer = order.get("customer")
	if not customer:
		invalid("order.customer", _("is required"))
	if not isinstance(customer, str) or not frappe.db.exists("Customer", customer):
		invalid("order.customer", _("Customer {0} does not exist").format(customer))
	if frappe.db.get_value("Customer", customer, "disabled"):
		invalid("order.customer", _("Customer {0} is disabled").format(customer))
	check_link("order.company", "Company", order.get("company"))
	check_link("order.currency", "Currency", order.get("currency"))
	check_link("order.set_warehouse", "Warehouse", order.get("set_warehouse"))
	for field in ("transaction_date", "delivery_date"):
		if field in order:
			check_date(f"order.{field}", order[field])
	items = order.get("items")
	if not isinstance(items, list) or not items:
		invalid("order.items", _("must be a non-empty list of items"))
	for idx, row in enumerate(items):
		check_item_row(f"order.items[{idx}]", row, has_date=bool(order.get("delivery_date")))
