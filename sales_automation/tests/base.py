"""The test base class, imported from here by every test of the app: version 16 replaces Frappe's
FrappeTestCase with IntegrationTestCase, and a version-16 branch changes only this module."""

try:  # version 16
	from frappe.tests import IntegrationTestCase
except ImportError:  # version 15
	from frappe.tests.utils import FrappeTestCase as IntegrationTestCase

__all__ = ["IntegrationTestCase"]
