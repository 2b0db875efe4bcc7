"""Sales Automation Settings as the engine reads them: cached, with defaults for what a site never saved."""

import frappe
from frappe.utils import cint


def get_settings():
	return frappe.get_cached_doc("Sales Automation Settings")


# How long a caller waits for an order another request or job is working on before it gets a 409
# (Settings: order_lock_wait_seconds). The longest holder is one call at 100 lines (about 5 s) or one
# background run.
DEFAULT_ORDER_LOCK_WAIT_SECONDS = 20


def order_lock_wait() -> int:
	return setting_or("order_lock_wait_seconds", DEFAULT_ORDER_LOCK_WAIT_SECONDS)


def setting_or(fieldname: str, default: int) -> int:
	"""A whole-number setting (0 included), or `default` where a site has never saved it."""
	value = get_settings().get(fieldname)
	return default if value in (None, "") else cint(value)
