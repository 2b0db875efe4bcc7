"""May the cycle act on this order now? One answer for the endpoints, bulk runs, resume, the desk and
the stuck-orders report (what is still left to do is progress.what_is_left)."""

import frappe
from frappe import _

from sales_automation.constants import ACTIVE_STATUSES, COMPLETED, PARTIALLY_COMPLETED
from sales_automation.exceptions import InvalidRequestError, InvalidStateError
from sales_automation.settings import get_settings

FIELDS = ("name", "docstatus", "status", "is_internal_customer")
HELD_STATUSES = ("Closed", "On Hold")


def order_facts(sales_order_name) -> frappe._dict | None:
	"""What the gate looks at, read from the database (None when there is no such order)."""
	if not isinstance(sales_order_name, str) or not sales_order_name:
		return None
	return frappe.db.get_value("Sales Order", sales_order_name, FIELDS, as_dict=True)


def refusal(sales_order, allow_draft: bool = False) -> tuple[str, str] | None:
	"""(field, reason) when the cycle may not act on `sales_order` (a document or a dict with FIELDS)
	now, else None. A draft passes only with `allow_draft` (the one call submits it)."""
	if not sales_order:
		return "sales_order", _("it does not exist")
	if sales_order.docstatus == 2:
		return "sales_order", _("it is cancelled")
	if sales_order.docstatus == 0 and not allow_draft:
		return "sales_order", _("it is not submitted")
	if sales_order.status in HELD_STATUSES:
		return "sales_order", _("it is {0}").format(_(sales_order.status))
	if sales_order.get("is_internal_customer"):
		return "sales_order.customer", out_of_scope_reason(sales_order.name)
	return None


def out_of_scope_reason(sales_order_name: str) -> str:
	"""Why the cycle does not automate an inter-company order (README: Supported ERPNext setups)."""
	return _(
		"Sales Order {0} is an inter-company order (internal customer); its delivery and billing run through ERPNext's inter-company documents, which sales automation does not create"
	).format(sales_order_name)


def check_can_start(rule: str | None):
	"""Refuse to start runs while automation is off, or with a rule that is missing or disabled."""
	if not get_settings().enabled:
		frappe.throw(
			_("Sales automation is switched off in Sales Automation Settings"), exc=InvalidStateError
		)
	if rule and not frappe.db.get_value("Sales Automation Rule", rule, "enabled"):
		try:
			frappe.throw(
				_("Sales Automation Rule {0} does not exist or is disabled").format(rule),
				exc=InvalidRequestError,
			)
		except InvalidRequestError as error:
			error.field = "rule"
			raise


def start_refusal(sales_order_name: str) -> str | None:
	"""Why a new run is not started for the order (bulk runs, the form's Run button), or None: the gate,
	read permission, an order already Completed, a run under way or done."""
	facts = order_facts(sales_order_name)
	if facts and not frappe.has_permission("Sales Order", "read", sales_order_name):
		return _("you may not read it")
	refused = refusal(facts)
	if refused:
		return refused[1]
	if facts.status == COMPLETED:
		return _("it is {0}").format(_(facts.status))
	if frappe.db.exists(
		"Sales Automation Run",
		{
			"sales_order": sales_order_name,
			"status": ["in", [*ACTIVE_STATUSES, COMPLETED, PARTIALLY_COMPLETED]],
		},
	):
		return _("it already has a run")
	return None
