"""Master data for the demo site and the test suite: a company with bank and cash accounts,
stocked items, customers and an API user. Every helper is idempotent (get or create)."""

import frappe
from frappe.utils import add_days, getdate, nowdate

DEMO_COMPANY = "Demo Sales Co"
DEMO_ABBR = "DSC"
DEMO_USER = "integration@demo-sales.example"


def complete_setup_wizard(
	company_name: str, abbr: str, currency: str = "USD", country: str = "United States"
):
	"""Run ERPNext's setup wizard once, the way a person finishing it in the desk would."""
	from frappe.desk.page.setup_wizard.setup_wizard import setup_complete

	if frappe.db.a_row_exists("Company"):
		return
	year = getdate().year
	setup_complete(
		{
			"currency": currency,
			"full_name": "Demo Admin",
			"company_name": company_name,
			"timezone": "UTC",
			"company_abbr": abbr,
			"industry": "Distribution",
			"country": country,
			"fy_start_date": f"{year}-01-01",
			"fy_end_date": f"{year}-12-31",
			"language": "english",
			"company_tagline": "Demo",
			"email": "admin@demo-sales.example",
			"password": "admin",
			"chart_of_accounts": "Standard",
		}
	)


def ensure_company(
	company_name: str, abbr: str, currency: str = "USD", country: str = "United States"
) -> str:
	"""A company with ERPNext's standard chart, a Bank GL account and default bank and cash accounts."""
	if not frappe.db.exists("Company", company_name):
		frappe.get_doc(
			{
				"doctype": "Company",
				"company_name": company_name,
				"abbr": abbr,
				"default_currency": currency,
				"country": country,
				"chart_of_accounts": "Standard",
				"create_chart_of_accounts_based_on": "Standard Template",
			}
		).insert()
	bank_account = ensure_account(company_name, "Main Bank", "Bank Accounts", account_type="Bank")
	company = frappe.get_doc("Company", company_name)
	updates = {}
	if not company.default_bank_account:
		updates["default_bank_account"] = bank_account
	if not company.default_cash_account:
		updates["default_cash_account"] = frappe.db.get_value(
			"Account", {"company": company_name, "account_type": "Cash", "is_group": 0}
		)
	if updates:
		frappe.db.set_value("Company", company_name, updates)
	ensure_fiscal_year(company_name)
	return company_name


def ensure_fiscal_year(company_name: str):
	from erpnext.accounts.utils import get_fiscal_year

	try:
		get_fiscal_year(nowdate(), company=company_name)
	except Exception:
		year = getdate().year
		frappe.get_doc(
			{
				"doctype": "Fiscal Year",
				"year": str(year),
				"year_start_date": f"{year}-01-01",
				"year_end_date": f"{year}-12-31",
			}
		).insert(ignore_if_duplicate=True)


def ensure_account(
	company_name: str,
	account_name: str,
	parent: str,
	account_type: str | None = None,
	currency: str | None = None,
) -> str:
	return ensure_company_record(
		"Account",
		company_name,
		"account_name",
		account_name,
		parent_account=parent,
		account_type=account_type,
		account_currency=currency,
	)


def ensure_company_record(doctype: str, company: str, title_field: str, title: str, **fields) -> str:
	"""A record of `company` that ERPNext names "<title> - <company abbr>" (accounts, warehouses), made
	when missing; a `parent_*` field is given by title too."""
	abbr = frappe.get_cached_value("Company", company, "abbr")
	name = f"{title} - {abbr}"
	if not frappe.db.exists(doctype, name):
		for fieldname, value in fields.items():
			if fieldname.startswith("parent_") and value:
				fields[fieldname] = f"{value} - {abbr}"
		frappe.get_doc({"doctype": doctype, title_field: title, "company": company, **fields}).insert()
	return name


def ensure_mode_of_payment(mode_name: str, company_name: str, account: str, payment_type: str) -> str:
	"""A Mode of Payment (type Cash or Bank) whose default account for the company is `account`."""
	if not frappe.db.exists("Mode of Payment", mode_name):
		frappe.get_doc(
			{"doctype": "Mode of Payment", "mode_of_payment": mode_name, "type": payment_type}
		).insert()
	mode = frappe.get_doc("Mode of Payment", mode_name)
	if not any(row.company == company_name for row in mode.accounts):
		mode.append("accounts", {"company": company_name, "default_account": account})
		mode.save()
	return mode_name


def ensure_customer(
	customer_name: str, currency: str | None = None, customer_group: str | None = None
) -> str:
	if not frappe.db.exists("Customer", customer_name):
		frappe.get_doc(
			{
				"doctype": "Customer",
				"customer_name": customer_name,
				"customer_type": "Company",
				"customer_group": customer_group or leaf_record("Customer Group"),
				"territory": leaf_record("Territory"),
				"default_currency": currency,
			}
		).insert()
	return customer_name


def leaf_record(doctype: str) -> str:
	"""The first non-group record of a tree DocType (Customer Group, Territory, Item Group, ...)."""
	return frappe.db.get_value(
		doctype, {"is_group": 0}, "name", order_by="creation asc"
	) or frappe.db.get_value(doctype, {}, "name", order_by="lft asc")


def default_warehouse(company_name: str) -> str:
	abbr = frappe.get_cached_value("Company", company_name, "abbr")
	name = f"Stores - {abbr}"
	if frappe.db.exists("Warehouse", name):
		return name
	return frappe.db.get_value("Warehouse", {"company": company_name, "is_group": 0}, "name")


def ensure_item(item_code: str, is_stock_item: int = 1, valuation_rate: float = 50, **extra) -> str:
	if not frappe.db.exists("Item", item_code):
		frappe.get_doc(
			{
				"doctype": "Item",
				"item_code": item_code,
				"item_name": item_code,
				"item_group": leaf_record("Item Group"),
				"stock_uom": "Nos",
				"is_stock_item": is_stock_item,
				"include_item_in_manufacturing": 0,
				"valuation_rate": valuation_rate,
				**extra,
			}
		).insert()
	return item_code


def receive_stock(item_code: str, warehouse: str, qty: float, company_name: str, rate: float = 50):
	"""Put stock on hand through a submitted Material Receipt, as a storekeeper would."""
	stock_entry = frappe.get_doc(
		{
			"doctype": "Stock Entry",
			"stock_entry_type": "Material Receipt",
			"company": company_name,
			"items": [{"item_code": item_code, "qty": qty, "t_warehouse": warehouse, "basic_rate": rate}],
		}
	)
	stock_entry.insert()
	stock_entry.submit()
	return stock_entry


def ensure_api_user(email: str, roles: list[str], first_name: str = "Integration") -> tuple[str, str]:
	"""A System User with the given roles and an API key/secret (kept once made); returns (key, secret)."""
	if not frappe.db.exists("User", email):
		frappe.get_doc(
			{
				"doctype": "User",
				"email": email,
				"first_name": first_name,
				"send_welcome_email": 0,
				"user_type": "System User",
			}
		).insert()
	user = frappe.get_doc("User", email)
	user.add_roles(*roles)
	user = frappe.get_doc("User", email)
	if user.api_key and user.api_secret:
		return user.api_key, user.get_password("api_secret")
	api_key = user.api_key or frappe.generate_hash(length=15)
	api_secret = frappe.generate_hash(length=15)
	user.api_key = api_key
	user.api_secret = api_secret
	user.save()
	return api_key, api_secret


SALES_ROLES = ["Sales User", "Sales Manager", "Stock User", "Accounts User", "Accounts Manager"]


def setup_demo() -> dict:
	"""Everything the local demo site needs; returns the demo integration user's credentials."""
	complete_setup_wizard(DEMO_COMPANY, DEMO_ABBR)
	company_name = frappe.db.get_value("Company", {}, "name", order_by="creation asc")
	ensure_company(company_name, frappe.db.get_value("Company", company_name, "abbr"))
	warehouse = default_warehouse(company_name)
	for item_code, rate in (("DEMO-WIDGET", 40), ("DEMO-GADGET", 75), ("DEMO-CABLE", 5)):
		ensure_item(item_code, valuation_rate=rate)
		if not frappe.db.get_value("Bin", {"item_code": item_code, "warehouse": warehouse}, "actual_qty"):
			receive_stock(item_code, warehouse, 1000, company_name, rate=rate)
	ensure_item("DEMO-INSTALLATION", is_stock_item=0, valuation_rate=0)
	ensure_customer("Demo Customer")
	api_key, api_secret = ensure_api_user(DEMO_USER, [*SALES_ROLES, "System Manager"])
	frappe.db.commit()  # nosemgrep - bench execute: the demo data outlives the command
	return {
		"company": company_name,
		"warehouse": warehouse,
		"customer": "Demo Customer",
		"user": DEMO_USER,
		"api_key": api_key,
		"api_secret": api_secret,
		"delivery_date": add_days(nowdate(), 7),
	}
