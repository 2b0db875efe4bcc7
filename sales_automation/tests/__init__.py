import frappe


def before_tests():
	"""Complete ERPNext's setup wizard on a fresh test site, as ERPNext's own test run does."""
	from erpnext.setup.utils import before_tests as erpnext_before_tests

	erpnext_before_tests()
	frappe.db.commit()
