"""Errors classed before they are retried.

A deadlock, a lock wait timeout, a lost database connection or an order another actor holds is
transient: the same work succeeds a moment later, so it is retried with backoff. Stock that is short
may arrive: retried with backoff too, until the attempts run out. A configuration gap (a missing
account or setting), a validation error or a permission error is not: no retry can fix it, so the run
fails at once with its cause and what to fix. Anything else (an error nobody foresaw) keeps the
bounded retries it always had."""

import frappe
from frappe import _

from sales_automation.exceptions import DatabaseBusyError, OrderBusyError, StockShortageError

# the class of an error, as a run's failed step records it (Sales Automation Run Step: error_class)
TRANSIENT = "Transient"
STOCK = "Stock Shortage"
CONFIGURATION = "Configuration"
VALIDATION = "Validation"
PERMISSION = "Permission"
UNEXPECTED = "Unexpected"

RETRIED = (TRANSIENT, STOCK, UNEXPECTED)

# MariaDB client errors of a connection that went away: server gone, lost during a query, cannot connect
LOST_CONNECTION_CODES = (2003, 2006, 2013, 2055)

# frappe.throw()s that name something to set up rather than something wrong with one document
CONFIGURATION_ERRORS = (
	frappe.OutgoingEmailError,
	frappe.DoesNotExistError,
	frappe.LinkValidationError,
	frappe.MandatoryError,
)


def causes(exc: BaseException | None, depth: int = 8):
	"""The error and what caused it (an explicit `cause`, then Python's chain), nearest first."""
	seen = 0
	while exc is not None and seen < depth:
		yield exc
		exc = getattr(exc, "cause", None) or exc.__cause__ or exc.__context__
		seen += 1


def is_transient(exc: BaseException) -> bool:
	"""A deadlock or lock wait timeout anywhere in the chain: MariaDB's "try again" (the endpoints retry
	their whole call on it, api.handling)."""
	return any(
		isinstance(error, frappe.QueryDeadlockError | frappe.QueryTimeoutError) for error in causes(exc)
	)


def is_passing(exc: BaseException) -> bool:
	"""Transient for a background step: a deadlock or lock wait timeout, a lost database connection, or
	the order held by another actor (api.handling answers the last with 409 instead of retrying)."""
	import pymysql

	for error in causes(exc):
		if isinstance(error, frappe.QueryDeadlockError | frappe.QueryTimeoutError):
			return True
		if isinstance(error, OrderBusyError | DatabaseBusyError | pymysql.InterfaceError):
			return True
		if isinstance(error, pymysql.OperationalError) and error.args:
			if error.args[0] in LOST_CONNECTION_CODES or frappe.db.is_deadlocked(error):
				return True
			if frappe.db.is_timedout(error):
				return True
	return False


def classify(exc: BaseException) -> str:
	"""The class of a step's error: one of TRANSIENT, STOCK, CONFIGURATION, VALIDATION, PERMISSION,
	UNEXPECTED."""
	if is_passing(exc):
		return TRANSIENT
	error = exc
	# a step failure raised for the caller wraps the step's own error
	while getattr(error, "cause", None) is not None:
		error = error.cause
	if isinstance(error, StockShortageError):
		return STOCK
	if isinstance(error, frappe.PermissionError):
		return PERMISSION
	if isinstance(error, CONFIGURATION_ERRORS):
		return CONFIGURATION
	if isinstance(error, frappe.ValidationError):
		return VALIDATION
	return UNEXPECTED


def is_retried(error_class: str) -> bool:
	return error_class in RETRIED


def what_to_fix(error_class: str) -> str:
	"""One sentence for a person: why the run was not retried and what to do."""
	return {
		CONFIGURATION: _(
			"Not retried: a setting, account or record is missing. Set it up, then resume the run."
		),
		VALIDATION: _("Not retried: the document was refused. Correct the cause, then resume the run."),
		PERMISSION: _(
			"Not retried: the user who submitted the order lacks a permission. Grant it, then resume the run."
		),
	}.get(error_class, "")


def contained(savepoint: str, side_effect) -> Exception | None:
	"""Run a side effect of a step (an e-mail, a desk notification) so that it never decides whether the
	documents stand: in a savepoint, rolled back when it fails, and what it put in the message log (an
	e-mail that cannot go out says so there) kept out of the caller's answer. Its error, else None."""
	messages = len(frappe.local.message_log)
	frappe.db.savepoint(savepoint)
	try:
		side_effect()
	except Exception as exc:
		frappe.db.rollback(save_point=savepoint)
		return exc
	finally:
		del frappe.local.message_log[messages:]
	return None
