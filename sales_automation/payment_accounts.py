"""The ledger account a payment goes to: the caller's bank_account, the rule's, or the mode of payment's
default for the order's company (none of them: ERPNext's default bank or cash account)."""

import frappe
from frappe import _

BANK_OR_CASH = ("Bank", "Cash")


def account_refusal(account, company: str) -> str | None:
	"""Why `account` cannot receive a payment of `company`, or None when it can."""
	details = (
		frappe.db.get_value(
			"Account",
			account,
			["name", "company", "account_type", "is_group", "disabled"],
			as_dict=True,
		)
		if isinstance(account, str) and account
		else None
	)
	if not details:
		return _("Account {0} does not exist").format(account)
	if details.company != company:
		return _("Account {0} belongs to company {1}, not to {2}").format(
			details.name, details.company, company
		)
	if details.account_type not in BANK_OR_CASH:
		return _("Account {0} is not a Bank or Cash account").format(details.name)
	if details.is_group:
		return _("Account {0} is a group; use a ledger account under it").format(details.name)
	if details.disabled:
		return _("Account {0} is disabled").format(details.name)
	return None


def named_account(payment: dict, rule) -> str | None:
	"""The receiving account the caller or, failing that, the rule names (None: neither does)."""
	return payment.get("bank_account") or rule.get("bank_account") or None


def receiving_account(payment: dict, rule, company: str) -> str | None:
	"""The account a payment of `company` goes to, when the caller, the rule or the mode of payment names
	one (None: ERPNext picks the company's default bank or cash account)."""
	from erpnext.accounts.doctype.sales_invoice.sales_invoice import get_bank_cash_account

	account = named_account(payment, rule)
	if account:
		return account
	mode_of_payment = payment.get("mode_of_payment") or rule.get("mode_of_payment")
	if mode_of_payment:
		return get_bank_cash_account(mode_of_payment, company)["account"]
	return None


def receiving_currency(payment: dict, rule, company: str) -> str | None:
	"""The currency of the account the payment will go to, chosen as get_payment_entry chooses it."""
	from erpnext.accounts.doctype.payment_entry.payment_entry import get_bank_cash_account

	account = receiving_account(payment, rule, company)
	if account:
		return frappe.get_cached_value("Account", account, "account_currency")
	return get_bank_cash_account(frappe._dict(company=company), None).get("account_currency")


def party_currency(document) -> str:
	"""The currency of the customer's account a payment of `document` (Sales Order or Invoice) settles,
	read as get_payment_entry reads it (a Sales Order does not always store it)."""
	from erpnext.accounts.party import get_party_account_currency

	return document.get("party_account_currency") or get_party_account_currency(
		"Customer", document.customer, document.company
	)
