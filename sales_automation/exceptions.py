import frappe


class SalesAutomationError(frappe.ValidationError):
	"""Base class of every error sales_automation raises on purpose.

	These are answers, not crashes: the response carries the message (and the endpoints' `error`
	object), never a traceback of the server's code paths."""

	def __init__(self, *args):
		super().__init__(*args)
		if getattr(frappe.local, "flags", None) is not None:
			frappe.local.flags.disable_traceback = True


class InvalidRuleError(SalesAutomationError):
	"""A rule whose settings cannot work together."""


class StepFailedError(SalesAutomationError):
	"""A step of the sales cycle failed; the message names the step, `step` and `cause` tell it apart."""

	http_status_code = 422


class StockShortageError(SalesAutomationError):
	"""Not enough stock to deliver, under the shortage policy Fail."""


class RunNotResumableError(SalesAutomationError):
	"""The run is in a state that cannot be resumed."""

	http_status_code = 409


class InvalidRequestError(SalesAutomationError):
	"""Bad input to an endpoint; `field` names the offending field."""

	http_status_code = 422


class InvalidStateError(SalesAutomationError):
	"""The order (or invoice) is in a state the call cannot act on: cancelled, closed, on hold, done."""

	http_status_code = 409


class IdempotencyKeyReusedError(SalesAutomationError):
	"""The idempotency key was used before with a different request."""

	http_status_code = 422


class RequestInProgressError(SalesAutomationError):
	"""The first call with this idempotency key has not finished yet."""

	http_status_code = 409


class CycleNotCancellableError(SalesAutomationError):
	"""The cycle's documents cannot all be cancelled; nothing was cancelled."""

	http_status_code = 409


class OrderBusyError(SalesAutomationError):
	"""Another request or job is acting on the Sales Order (it holds the order's lock)."""

	http_status_code = 409


class DatabaseBusyError(SalesAutomationError):
	"""Deadlocks or lock-wait timeouts persisted through the retries: temporary, retry later."""

	http_status_code = 503
