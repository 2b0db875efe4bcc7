"""Checks of the endpoints' input: every refusal is a 422 (or 409 for a state) naming the field."""

import json
import math
import re
from datetime import date, datetime

import frappe
from frappe import _
from frappe.database.schema import get_definition
from frappe.model import default_fields
from frappe.model.base_document import max_positive_value
from frappe.model.meta import get_field_precision
from frappe.utils import cint, flt

from sales_automation.api.master_data import contradiction, is_item_input
from sales_automation.constants import DELIVERY_NOTE, PAYMENT_ENTRY, SALES_INVOICE
from sales_automation.documents import rows_of
from sales_automation.exceptions import InvalidRequestError, InvalidStateError
from sales_automation.payment_accounts import account_refusal, party_currency, receiving_currency

STEP_KEYS = {"delivery_note": DELIVERY_NOTE, "sales_invoice": SALES_INVOICE, "payment_entry": PAYMENT_ENTRY}
PAYMENT_KEYS = (
	"mode_of_payment",
	"reference_no",
	"reference_date",
	"amount",
	"bank_account",
	"received_amount",
)
ORDER_READ_ONLY = {"name", "docstatus", "amended_from", "owner", "creation", "modified", "modified_by", "idx"}
# What ERPNext computes from the order and the documents made against it. A caller who sets one makes the
# engine believe work is done (per_billed 100, delivered_qty = qty). Most are read_only in the metadata,
# but a Property Setter can lift that, and some (delivery_status, billing_status, the Payment Schedule's
# paid_amount) never were.
COMPUTED_FIELDS = frozenset(
	(
		"status",
		"delivery_status",
		"billing_status",
		"per_delivered",
		"per_billed",
		"per_picked",
		"advance_paid",
		"has_unit_price_items",
		"total_qty",
		"total",
		"net_total",
		"grand_total",
		"rounded_total",
		"rounding_adjustment",
		"total_taxes_and_charges",
		"base_total",
		"base_net_total",
		"base_grand_total",
		"base_rounded_total",
		"amount_eligible_for_commission",
		"total_commission",
		"loyalty_points",
		"loyalty_amount",
		"amount",
		"base_amount",
		"net_amount",
		"stock_qty",
		"distributed_discount_amount",
		"delivered_qty",
		"billed_amt",
		"returned_qty",
		"ordered_qty",
		"picked_qty",
		"packed_qty",
		"produced_qty",
		"planned_qty",
		"work_order_qty",
		"production_plan_qty",
		"stock_reserved_qty",
		"actual_qty",
		"projected_qty",
		"valuation_rate",
		"gross_profit",
		"paid_amount",
		"outstanding",
		"base_paid_amount",
		"base_outstanding",
		"allocated_amount",
	)
)
# read_only in the metadata only because the desk fills it from the Price List; ERPNext keeps a value the
# caller sends and derives rate from it and discount_percentage, so it is an input, not a result
CALLER_SET_READ_ONLY = frozenset((("Sales Order Item", "price_list_rate"),))
# labels callers send as if they were fields, with the field they name
LABEL_NAMES = {("Sales Order Item", "delivery_warehouse"): "warehouse"}
# shares of a whole, whatever their fieldtype (additional_discount_percentage is a Float)
PERCENTAGES = frozenset(("additional_discount_percentage", "invoice_portion", "allocated_percentage"))
MULTI_LINE_TYPES = frozenset(
	("Small Text", "Text", "Long Text", "Text Editor", "Code", "HTML Editor", "Markdown Editor")
)
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")
# in multi-line text \t, \n and \r are text, the other control characters are not
CONTROL_CHARACTERS_IN_TEXT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
TEXT_COLUMN_BYTES = {"text": 2**16 - 1, "mediumtext": 2**24 - 1}
NUMBER_COLUMNS = ("decimal", *max_positive_value)
STRING_COLUMNS = ("varchar", "text", "mediumtext", "longtext")


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
	for idx, step in enumerate(steps):
		if not isinstance(step, str) or step not in STEP_KEYS:
			invalid(f"steps[{idx}]", _("must be one of {0}").format(", ".join(STEP_KEYS)))
	return [STEP_KEYS[step] for step in STEP_KEYS if step in steps]


def check_names(field: str, names) -> list[str] | None:
	"""A list argument of document names, each a non-empty string."""
	if names is None:
		return None
	if not isinstance(names, list):
		invalid(field, _("must be a list of names"))
	for idx, name in enumerate(names):
		if not isinstance(name, str) or not name.strip():
			invalid(f"{field}[{idx}]", _("must be a name (a non-empty string)"))
	return names


def check_payment(payment, prefix: str = "payment."):
	"""`prefix`: how the fields are named to the caller (the pay endpoint takes them as arguments)."""
	if payment is None:
		return
	if not isinstance(payment, dict):
		invalid("payment", _("must be an object"))
	for key in payment:
		if key not in PAYMENT_KEYS:
			invalid(f"{prefix}{key}", _("unknown field; use {0}").format(", ".join(PAYMENT_KEYS)))
	meta = frappe.get_meta("Payment Entry")
	for key, fieldname in (("amount", "paid_amount"), ("received_amount", "received_amount")):
		if key in payment:
			amount_field = meta.get_field(fieldname)
			check_number(f"{prefix}{key}", amount_field, payment[key])
			# ERPNext rounds the amount to the currency's precision: 1e-12 would be a payment of 0
			if flt(payment[key], get_field_precision(amount_field)) <= 0:
				invalid(f"{prefix}{key}", _("must be a number greater than 0"))
	if payment.get("mode_of_payment"):
		check_value(f"{prefix}mode_of_payment", meta.get_field("mode_of_payment"), payment["mode_of_payment"])
		if not frappe.db.exists("Mode of Payment", payment["mode_of_payment"]):
			invalid(
				f"{prefix}mode_of_payment",
				_("Mode of Payment {0} does not exist").format(payment["mode_of_payment"]),
			)
	if "bank_account" in payment:
		if not (isinstance(payment["bank_account"], str) and payment["bank_account"].strip()):
			invalid(f"{prefix}bank_account", _("must be the name of an Account"))
		check_value(f"{prefix}bank_account", meta.get_field("paid_to"), payment["bank_account"])
	if "reference_date" in payment:
		check_date(f"{prefix}reference_date", payment["reference_date"])
	if "reference_no" in payment:
		if not (isinstance(payment["reference_no"], str) and 0 < len(payment["reference_no"]) <= 140):
			invalid(f"{prefix}reference_no", _("must be a string of 1 to 140 characters"))
		check_value(f"{prefix}reference_no", meta.get_field("reference_no"), payment["reference_no"])


def check_receiving_account(payment: dict | None, company: str | None, prefix: str = "payment."):
	"""Refuse, before any document is made, a bank_account that cannot receive a payment of `company`."""
	account = (payment or {}).get("bank_account")
	if account and company:
		refusal = account_refusal(account, company)
		if refusal:
			invalid(f"{prefix}bank_account", refusal)


def check_received_amount(payment: dict | None, rule, document, prefix: str = "payment."):
	"""received_amount is what reached a bank whose account is in another currency than the customer's
	account: ERPNext ignores it (receives the paid amount) when both are in one currency, so it is
	refused there. `document`: the Sales Order or Sales Invoice paid."""
	if not payment or "received_amount" not in payment:
		return
	currency = receiving_currency(payment, rule, document.company)
	if currency == party_currency(document):
		invalid(
			f"{prefix}received_amount",
			_(
				"is only for a receiving account in another currency than the customer's account; both are in {0}: leave it out"
			).format(currency),
		)


def check_item_row(path: str, row, has_date: bool, links: dict):
	if not isinstance(row, dict):
		invalid(path, _("must be an object"))
	check_fields(path, "Sales Order Item", row)
	item_code = row.get("item_code")
	if not item_code:
		invalid(f"{path}.item_code", _("is required"))
	exists, disabled = link_flag(links, "Item", item_code) if isinstance(item_code, str) else (False, None)
	if not exists:
		invalid(f"{path}.item_code", _("Item {0} does not exist").format(item_code))
	if disabled:
		invalid(f"{path}.item_code", _("Item {0} is disabled").format(item_code))
	if "qty" not in row:
		invalid(f"{path}.qty", _("is required"))
	# ERPNext rounds qty to its precision: 1e-12 would be stored as an order line of 0
	precision = get_field_precision(frappe.get_meta("Sales Order Item").get_field("qty"))
	if not is_number(row["qty"]) or flt(row["qty"], precision) <= 0:
		invalid(
			f"{path}.qty", _("must be a number greater than 0 when rounded to {0} decimals").format(precision)
		)
	for field in ("rate", "price_list_rate", "discount_percentage"):
		if field in row and (not is_number(row[field]) or flt(row[field]) < 0):
			invalid(f"{path}.{field}", _("must be a number of at least 0"))
	check_link(f"{path}.warehouse", "Warehouse", row.get("warehouse"), links)
	check_link(f"{path}.uom", "UOM", row.get("uom"), links)
	if contradicted := contradiction(path, row):
		invalid(*contradicted)
	if "delivery_date" in row:
		check_date(f"{path}.delivery_date", row["delivery_date"])
	elif not has_date:
		invalid(f"{path}.delivery_date", _("is required when the order has no delivery_date"))


def check_fields(path: str, doctype: str, values: dict):
	meta = frappe.get_meta(doctype)
	for key, value in values.items():
		if key == "doctype":
			continue
		field = f"{path}.{key}"
		if key in ORDER_READ_ONLY:
			invalid(field, _("cannot be set by the caller"))
		df = meta.get_field(key)
		if not df and (doctype, key) in LABEL_NAMES:
			# the label ERPNext's docs and desk show, not a field: said so rather than taken under two names
			invalid(field, _("is not a field of {0}; use {1}").format(_(doctype), LABEL_NAMES[doctype, key]))
		if not df:
			invalid(field, _("is not a field of {0}").format(_(doctype)))
		if is_computed(doctype, df):
			invalid(field, _("is set by ERPNext and cannot be set by the caller"))
		if df.fieldtype in ("Table", "Table MultiSelect"):
			if not isinstance(value, list):
				invalid(field, _("must be a list"))
			if key != "items":
				for idx, row in enumerate(value):
					if not isinstance(row, dict):
						invalid(f"{field}[{idx}]", _("must be an object"))
					check_fields(f"{field}[{idx}]", df.options, row)
		else:
			check_value(field, df, value)


def is_computed(doctype: str, df) -> bool:
	"""A field ERPNext fills in itself: read-only, fetched from a linked record, or a known result."""
	if (doctype, df.fieldname) in CALLER_SET_READ_ONLY or is_item_input(doctype, df.fieldname):
		return False
	return bool(df.read_only or df.fetch_from or df.fieldname in COMPUTED_FIELDS)


def check_value(field: str, df, value):
	"""Refuse a value the field's column would store as something else, or not at all."""
	if value is None:
		return
	if df.fieldtype == "Check":
		if not (is_number(value) or isinstance(value, bool)) or value not in (0, 1):
			invalid(field, _("must be 0 or 1"))
		return
	column = column_of(df)[0]
	if column in NUMBER_COLUMNS:
		check_number(field, df, value)
	elif column in STRING_COLUMNS:
		check_string(field, df, value)
	elif column == "date":
		if value != "":
			check_date(field, value)
	elif column == "datetime" and value != "":
		try:
			datetime.fromisoformat(value)
		except (TypeError, ValueError):
			invalid(field, _("must be a date and time as YYYY-MM-DD HH:MM:SS"))


def check_number(field: str, df, value):
	if not is_number(value):
		invalid(field, _("must be a number"))
	# Python's json reads NaN and Infinity; no column can hold them
	if isinstance(value, float) and not math.isfinite(value):
		invalid(field, _("must be a finite number"))
	if df.fieldtype == "Percent" or df.fieldname in PERCENTAGES:
		if not 0 <= value <= 100:
			invalid(field, _("must be from 0 to 100"))
		return
	column, limit = column_of(df)
	if column == "decimal":
		if abs(value) >= limit:
			invalid(
				field, _("must be greater than {0} and less than {1}").format(f"{-limit:,}", f"{limit:,}")
			)
	elif abs(value) > limit or value != int(value):
		invalid(field, _("must be a whole number from {0} to {1}").format(f"{-limit:,}", f"{limit:,}"))


def check_string(field: str, df, value):
	if not isinstance(value, str):
		invalid(field, _("must be a string"))
	if df.fieldtype in MULTI_LINE_TYPES:
		if CONTROL_CHARACTERS_IN_TEXT.search(value):
			invalid(field, _("must not contain control characters other than tab and line breaks"))
	elif CONTROL_CHARACTERS.search(value):
		invalid(field, _("must not contain control characters or line breaks"))
	column, limit = column_of(df)
	if column == "varchar" and len(value) > limit:
		invalid(field, _("must be at most {0} characters long").format(limit))
	if column != "varchar" and limit and len(value.encode()) > limit:
		invalid(field, _("must be at most {0} bytes long").format(limit))
	if df.fieldtype == "Select" and df.fieldname != "naming_series":
		options = (df.options or "").split("\n")
		# frappe compares the stripped value, and lets any value pass a Select without options
		if value and any(options) and value.strip() not in options:
			invalid(field, _("must be one of {0}").format(", ".join(option for option in options if option)))


def column_of(df) -> tuple[str, int | None]:
	"""The column type ERPNext stores the field in, and its limit: a number's bound, a string's length."""
	definition = get_definition(df.fieldtype, df.precision, df.length) or ""
	column, size = re.fullmatch(r"(\w*)(?:\((.*)\))?", definition).groups()
	if column == "decimal":
		digits, scale = (cint(part) for part in size.split(","))
		return column, 10 ** (digits - scale)
	if column in max_positive_value:
		# frappe's own length check allows what is within this in absolute value
		return column, max_positive_value[column]
	if column == "varchar":
		return column, cint(size) or frappe.db.VARCHAR_LEN
	return column, TEXT_COLUMN_BYTES.get(column)


def check_link(path: str, doctype: str, value, links: dict | None = None):
	if value in (None, ""):
		return
	exists, flag = link_flag(links or {}, doctype, value) if isinstance(value, str) else (False, None)
	if not exists:
		invalid(path, _("{0} {1} does not exist").format(_(doctype), value))
	if doctype == "Warehouse" and flag:
		invalid(path, _("Warehouse {0} is a group; use a leaf warehouse").format(value))


# what is read of a record an order's rows link to (Item: disabled, Warehouse: a group; UOM: it exists)
LINK_FLAGS = {"Item": "disabled", "Warehouse": "is_group", "UOM": None}
ROW_LINKS = (("Item", "item_code"), ("Warehouse", "warehouse"), ("UOM", "uom"))


def payload_links(order: dict) -> dict:
	"""{doctype: {name: flag}} of the items, warehouses and UOMs the order's rows name, read in one query
	per doctype rather than one or two per row (an order of 100 lines would cost 400)."""
	names = {doctype: set() for doctype in LINK_FLAGS}
	for row in order["items"]:
		for doctype, field in ROW_LINKS:
			value = row.get(field) if isinstance(row, dict) else None
			if value and isinstance(value, str):
				names[doctype].add(value)
	links = {}
	for doctype, wanted in names.items():
		if wanted:
			flag = LINK_FLAGS[doctype]
			fields = ["name", flag] if flag else ["name"]
			records = rows_of(doctype, filters={"name": ["in", list(wanted)]}, fields=fields)
			links[doctype] = {record.name: record.get(flag) if flag else None for record in records}
	return links


def record_exists(doctype: str, name: str) -> bool:
	"""frappe.db.exists, read the way Frappe's link validation reads a link (`get_value(..., "name",
	cache=True)`): the order's own validation of the same link then sends no second statement."""
	return bool(frappe.db.get_value(doctype, name, "name", cache=True))


def link_flag(links: dict, doctype: str, name: str) -> tuple[bool, object]:
	"""Whether the record exists, and its LINK_FLAGS field (None for doctypes without one)."""
	known = links.get(doctype) or {}
	if name in known:
		return True, known[name]
	# not read as given (MariaDB matches a name regardless of case or trailing spaces): ask for it
	flag = LINK_FLAGS.get(doctype)
	if not flag:
		return record_exists(doctype, name), None
	record = frappe.db.get_value(doctype, name, ["name", flag])
	return (True, record[1]) if record else (False, None)


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
	if not isinstance(customer, str) or not record_exists("Customer", customer):
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
	links = payload_links(order)
	for idx, row in enumerate(items):
		check_item_row(f"order.items[{idx}]", row, has_date=bool(order.get("delivery_date")), links=links)
	check_totals(order)


def check_totals(order: dict):
	"""Refuse an order whose amounts would not fit the columns ERPNext computes them into.

	Each number may fit on its own while qty times rate, the sum, its conversion to the company's currency
	or the taxes on it do not, and MariaDB refuses the row: a server error instead of an answer. The bound
	is generous (every tax as if on the running total), so an order near the limit may be refused."""
	limit = column_of(frappe.get_meta("Sales Order").get_field("base_grand_total"))[1]
	# base amounts are the amounts times these rates
	factor = max(1, abs(flt(order.get("conversion_rate"))), abs(flt(order.get("plc_conversion_rate"))))
	total = abs(flt(order.get("discount_amount")))
	total_qty = 0
	for idx, row in enumerate(order["items"]):
		qty = flt(row["qty"])
		margin = abs(flt(row.get("margin_rate_or_amount")))
		# a margin is a percentage or an amount on the price list rate; take whichever is more
		unit = max(
			abs(flt(row.get("rate"))), abs(flt(row.get("price_list_rate"))) * (1 + margin / 100) + margin
		)
		for amount, what in (
			(qty * unit * factor, "rate"),
			(qty * abs(flt(row.get("weight_per_unit"))), "weight_per_unit"),
		):
			if amount >= limit:
				invalid(
					f"order.items[{idx}]",
					_("qty times {0} comes to {1}, more than ERPNext can store").format(
						what, f"{amount:,.0f}"
					),
				)
		total += qty * unit
		total_qty += qty
	for row in order.get("taxes") or []:
		# the most any charge type adds: its rate on the running total or per unit, or a fixed amount
		total += abs(flt(row.get("rate"))) * (total / 100 + total_qty) + abs(flt(row.get("tax_amount")))
	if total * factor >= limit:
		invalid(
			"order.items",
			_("the order comes to about {0} with taxes, more than ERPNext can store").format(
				f"{total * factor:,.0f}"
			),
		)


# the operators of Frappe's filters (frappe.model.db_query) a list of orders can be chosen by
FILTER_OPERATORS = frozenset(
	(
		"=", "!=", ">", "<", ">=", "<=", "like", "not like", "in", "not in", "is", "between", "timespan",
		"descendants of", "not descendants of", "ancestors of", "not ancestors of",
	)
)  # fmt: skip


def check_filters(field: str, doctype: str, filters) -> dict | list | None:
	"""Frappe filters on `doctype`, checked by shape before they reach the query builder: {fieldname:
	value or [operator, value]}, or [[fieldname, operator, value], ...] (the doctype may lead a row)."""
	if filters is None:
		return None
	meta = frappe.get_meta(doctype)

	def check_condition(path: str, fieldname, operator, value):
		if not isinstance(fieldname, str) or not (meta.has_field(fieldname) or fieldname in default_fields):
			invalid(path, _("{0} is not a field of {1}").format(fieldname, _(doctype)))
		if not isinstance(operator, str) or operator.lower() not in FILTER_OPERATORS:
			invalid(path, _("unknown operator {0}").format(operator))
		values = value if isinstance(value, list) else [value]
		if not all(isinstance(item, str | int | float | bool) or item is None for item in values):
			invalid(path, _("a value must be a string, a number, true, false or null, or a list of them"))

	if isinstance(filters, dict):
		for fieldname, value in filters.items():
			if isinstance(value, list) and value and isinstance(value[0], str) and len(value) == 2:
				check_condition(f"{field}.{fieldname}", fieldname, value[0], value[1])
			else:
				check_condition(f"{field}.{fieldname}", fieldname, "=", value)
		return filters
	if not isinstance(filters, list):
		invalid(field, _("must be Frappe filters: an object or a list"))
	for idx, condition in enumerate(filters):
		path = f"{field}[{idx}]"
		if isinstance(condition, list) and len(condition) == 4 and condition[0] == doctype:
			condition = condition[1:]
		if not isinstance(condition, list) or len(condition) != 3:
			invalid(path, _("must be [fieldname, operator, value]"))
		check_condition(path, *condition)
	return filters
