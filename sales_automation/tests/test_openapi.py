"""docs/openapi.yaml stays true to the code: every path is a whitelisted method with those arguments."""

import inspect
import os

import yaml

import frappe

from sales_automation.tests.base import IntegrationTestCase

SPEC = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "openapi.yaml")


class TestOpenAPI(IntegrationTestCase):
	def test_documented_methods_exist_with_the_documented_arguments(self):
		with open(SPEC) as spec_file:
			spec = yaml.safe_load(spec_file)
		self.assertTrue(spec["openapi"].startswith("3.1"))
		for path, operations in spec["paths"].items():
			with self.subTest(path=path):
				method = frappe.get_attr(path.removeprefix("/api/method/"))
				self.assertIn(method, frappe.whitelisted)
				if "get" in operations:
					documented = {
						parameter["name"]
						for parameter in operations["get"]["parameters"]
						if parameter["in"] == "query"
					}
				else:
					schema = operations["post"]["requestBody"]["content"]["application/json"]["schema"]
					properties = dict(schema.get("properties", {}))
					for part in schema.get("allOf", []):
						properties |= self.resolve(spec, part).get("properties", {})
					# read from the request itself rather than passed to the method (`async`)
					documented = {name for name, node in properties.items() if not node.get("x-from-request")}
				arguments = set(inspect.signature(inspect.unwrap(method)).parameters)
				self.assertEqual(documented, arguments)

	def resolve(self, spec, node):
		if "$ref" not in node:
			return node
		target = spec
		for part in node["$ref"].lstrip("#/").split("/"):
			target = target[part]
		return target
