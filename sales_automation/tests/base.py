"""The test base class, imported from here by every test of the app: version 16 replaces Frappe's
FrappeTestCase with IntegrationTestCase, and a version-16 branch changes only this module."""

try:  # version 16
	from frappe.tests import IntegrationTestCase
except ImportError:  # version 15
	from frappe.tests.utils import FrappeTestCase as IntegrationTestCase


class EndpointTestCase(IntegrationTestCase):
	"""For tests that call the endpoints in process: their fixtures are committed first (an endpoint
	rolls back its transaction when it refuses or dry-runs), and each test ends as Administrator with no
	`error` left in the response."""

	@classmethod
	def setUpClass(cls):
		import frappe

		from sales_automation.tests.factories import test_env

		super().setUpClass()
		cls.env = test_env()
		frappe.db.commit()  # the endpoints roll back on failure; fixtures must survive that

	def tearDown(self):
		import frappe

		frappe.set_user("Administrator")
		frappe.local.response.pop("error", None)


class AutomationTestCase(IntegrationTestCase):
	"""For tests of the automation itself: the test company (`cls.env`), and Settings with the
	automation on and three attempts per background run."""

	@classmethod
	def setUpClass(cls):
		import frappe

		from sales_automation.tests.factories import test_env

		super().setUpClass()
		cls.env = test_env()
		frappe.db.set_single_value("Sales Automation Settings", {"enabled": 1, "max_attempts": 3})


__all__ = ["AutomationTestCase", "EndpointTestCase", "IntegrationTestCase"]
