import frappe


class SalesAutomationError(frappe.ValidationError):
	"""Base class of every error sales_automation raises on purpose."""


class InvalidRuleError(SalesAutomationError):
	"""A rule whose settings cannot work together."""


class StepFailedError(SalesAutomationError):
	"""A step of the sales cycle failed; the message names the step."""


class StockShortageError(SalesAutomationError):
	"""Not enough stock to deliver, under the shortage policy Fail."""


class RunNotResumableError(SalesAutomationError):
	"""The run is in a state that cannot be resumed."""
