// The Sales Order list: run the sales cycle for the selected (or all filtered) orders in the background,
// with a progress bar and a summary at the end. Extends ERPNext's list settings, which load first.
frappe.provide("sales_automation.bulk");

(() => {
	const settings = (frappe.listview_settings["Sales Order"] =
		frappe.listview_settings["Sales Order"] || {});
	const erpnext_onload = settings.onload;
	settings.onload = function (listview) {
		if (erpnext_onload) erpnext_onload.apply(this, arguments);
		if (!frappe.user.has_role(frappe.boot.sales_automation.manager_roles)) return;
		listview.page.add_actions_menu_item(__("Run Sales Cycle"), () => {
			const names = listview.get_checked_items(true);
			sales_automation.bulk.start(listview, { sales_orders: names }, names.length);
		});
		listview.page.add_menu_item(__("Run Sales Cycle for Filtered Orders"), () => {
			const filters = [...listview.get_filters_for_args(), ["Sales Order", "docstatus", "=", 1]];
			sales_automation.bulk.start(listview, { filters }, null);
		});
	};
})();

Object.assign(sales_automation.bulk, {
	POLL_MS: 1500,

	start(listview, target, count) {
		const dialog = new frappe.ui.Dialog({
			title: __("Run Sales Cycle"),
			fields: [
				{
					fieldtype: "HTML",
					options: `<p>${
						count == null
							? __("For every submitted order the list's filters show (at most 500).")
							: __("For the {0} selected orders.", [count])
					} ${__(
						"Orders already done or under way are skipped. The runs go through the background queue."
					)}</p>`,
				},
				{
					fieldname: "rule",
					label: __("Rule"),
					fieldtype: "Link",
					options: "Sales Automation Rule",
					get_query: () => ({ filters: { enabled: 1 } }),
					description: __("Leave empty to use the rule that matches each order."),
				},
			],
			primary_action_label: __("Start"),
			primary_action: ({ rule }) => {
				dialog.hide();
				frappe
					.call({
						method: "sales_automation.api.runs.run_bulk",
						args: { ...target, rule: rule || null },
						freeze: true,
					})
					.then((r) => this.follow(listview, r.message));
			},
		});
		dialog.show();
	},

	follow(listview, started) {
		const runs = started.runs;
		if (!runs.length) {
			this.summary(listview, { total: 0, by_status: {}, failed: [] }, started.skipped);
			return;
		}
		const title = __("Running the sales cycle");
		frappe.show_progress(title, 0, runs.length, __("{0} of {1} orders done", [0, runs.length]));
		const poll = () => {
			frappe
				.xcall("sales_automation.api.runs.bulk_status", { runs })
				.then((status) => {
					frappe.show_progress(
						title,
						status.done,
						status.total,
						__("{0} of {1} orders done", [status.done, status.total])
					);
					if (status.finished) {
						frappe.hide_progress();
						this.summary(listview, status, started.skipped);
					} else {
						setTimeout(poll, this.POLL_MS);
					}
				})
				.catch(() => setTimeout(poll, this.POLL_MS * 4));
		};
		setTimeout(poll, this.POLL_MS);
	},

	summary(listview, status, skipped) {
		const esc = frappe.utils.escape_html;
		const by_status = status.by_status || {};
		const names = frappe.boot.sales_automation;
		const link = (doctype, name) =>
			`<a href="${frappe.utils.get_form_link(doctype, name)}">${esc(name)}</a>`;
		const lines = [
			`<p>${__("Completed: {0}", [by_status[names.completed] || 0])}${
				by_status[names.partially_completed]
					? " · " + __("Partially completed: {0}", [by_status[names.partially_completed]])
					: ""
			} · ${__("Failed: {0}", [status.failed.length])} · ${__("Skipped: {0}", [skipped.length])}</p>`,
		];
		if (status.failed.length) {
			lines.push(
				`<p><b>${__("Failed")}</b></p><ul>${status.failed
					.map(
						(row) =>
							`<li>${link("Sales Order", row.sales_order)}: ${link(
								"Sales Automation Run",
								row.run
							)} ${esc(row.error || "")}</li>`
					)
					.join("")}</ul>`
			);
		}
		if (skipped.length) {
			lines.push(
				`<p><b>${__("Skipped")}</b></p><ul>${skipped
					.map((row) => `<li>${link("Sales Order", row.sales_order)}: ${esc(row.reason)}</li>`)
					.join("")}</ul>`
			);
		}
		frappe.msgprint({
			title: __("Sales Cycle: Summary"),
			message: `<div class="sales-automation-bulk-summary" data-completed="${
				by_status[names.completed] || 0
			}" data-failed="${status.failed.length}">${lines.join("")}</div>`,
			indicator: status.failed.length ? "orange" : "green",
		});
		listview.refresh();
	},
});
