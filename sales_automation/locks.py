"""One actor per Sales Order at a time: a MariaDB user lock (GET_LOCK) named after the order.

Every path that acts on an order (the one call, the step endpoints, the submit hook, background jobs,
resume, retry, bulk, cancel) takes the order's lock before it reads what the order still needs, and
holds it for as long as it works. The lock belongs to the database connection, so it also tells a live
executor from a dead one: a worker that is killed closes its connection and the lock is free at once.

Two scopes:
- "transaction" (requests, the submit hook): released when the transaction that took it commits or
  rolls back, so nobody reads the order before the documents made under the lock are visible;
- "session" (background jobs that commit after every step): held across those commits and released
  by the caller, in a `finally`.

A user lock is not a row lock, so InnoDB's snapshot does not move when it is granted: a transaction
that has read before it took the lock would still see the order as it was. `take` therefore starts a
fresh snapshot when the transaction has written nothing yet (nothing to lose), and a caller whose
transaction has written (the submit hook, an order made in this call) is acting on an order nobody
else can see yet."""

import hashlib

import frappe
from frappe import _

from sales_automation.exceptions import OrderBusyError

TRANSACTION = "transaction"
SESSION = "session"


def lock_name(sales_order_name: str) -> str:
	# user locks are server-wide (64 characters at most): the database name keeps sites apart
	digest = hashlib.sha1(f"{frappe.conf.db_name}\x00{sales_order_name}".encode()).hexdigest()
	return f"sales_automation:{digest}"


def held() -> dict:
	"""The order locks this connection holds, by order name: their scope."""
	if getattr(frappe.local, "sales_automation_locks", None) is None:
		frappe.local.sales_automation_locks = {}
	return frappe.local.sales_automation_locks


def take(
	sales_order_name: str, timeout: float = 0, scope: str = TRANSACTION, busy_message: str | None = None
) -> None:
	"""Take the order's lock, waiting up to `timeout` seconds; OrderBusyError (409) when another actor
	keeps it. Taking a lock this connection already holds does nothing."""
	locks = held()
	if sales_order_name in locks:
		if scope == SESSION:
			locks[sales_order_name] = SESSION
		return
	name = lock_name(sales_order_name)
	granted = frappe.db.sql("select get_lock(%s, %s)", (name, timeout))  # nosemgrep - a user lock
	granted = granted[0][0]
	if granted != 1:
		frappe.throw(
			busy_message
			or _("Sales Order {0} is being worked on by another request or job; try again shortly").format(
				sales_order_name
			),
			exc=OrderBusyError,
			title=_("Order Busy"),
		)
	locks[sales_order_name] = scope
	if scope == TRANSACTION:
		frappe.db.after_commit.add(release_transaction_locks)
		frappe.db.after_rollback.add(release_transaction_locks)
	fresh_snapshot()


def release(sales_order_name: str) -> None:
	if held().pop(sales_order_name, None):
		frappe.db.sql("select release_lock(%s)", (lock_name(sales_order_name),))  # nosemgrep - a user lock


def release_transaction_locks() -> None:
	for sales_order_name, scope in list(held().items()):
		if scope == TRANSACTION:
			release(sales_order_name)


def fresh_snapshot() -> None:
	"""End a transaction that has only read, so what follows reads what others committed before the
	lock was granted (InnoDB's repeatable read keeps the snapshot of the first read otherwise)."""
	if frappe.db.transaction_writes:
		return
	# a raw statement: nothing was written, so there is nothing to commit and no callback to run
	frappe.db.sql("commit")  # nosemgrep - only reads to end: no callbacks may run
	frappe.db.begin()


def is_held_elsewhere(sales_order_name: str) -> bool:
	"""Whether another connection holds the order's lock (a live executor)."""
	if sales_order_name in held():
		return False
	name = lock_name(sales_order_name)
	holder = frappe.db.sql("select is_used_lock(%s)", (name,))  # nosemgrep - a user lock
	return holder[0][0] is not None


class order_lock:
	"""`with order_lock(name, timeout):` for session-scoped work (released on exit)."""

	def __init__(self, sales_order_name: str, timeout: float = 0):
		self.sales_order_name = sales_order_name
		self.timeout = timeout
		self.taken = False

	def __enter__(self):
		self.taken = self.sales_order_name not in held()
		take(self.sales_order_name, self.timeout, scope=SESSION)
		return self

	def __exit__(self, *exc):
		if self.taken:
			release(self.sales_order_name)
