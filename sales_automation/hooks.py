app_name = "sales_automation"
app_title = "Sales Automation"
app_publisher = "sales_automation developers"
app_description = "Order-to-cash automation for ERPNext: rule-driven delivery, invoicing and payment"
app_email = "developers@sales-automation.invalid"
app_license = "mit"

# org/repo form: a bare app name makes install-app look the app up on GitHub
required_apps = ["frappe/erpnext"]

before_tests = "sales_automation.tests.before_tests"
