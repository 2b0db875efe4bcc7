frappe.ui.form.on("Sales Automation Run", {
	refresh(frm) {
		// a Running run may have lost its worker: the server resumes it then, and refuses a live one
		const names = frappe.boot.sales_automation;
		const can_resume =
			names.resumable_statuses.includes(frm.doc.status) && frappe.user.has_role(names.manager_roles);
		if (can_resume) {
			// a failed run is retried from its failed step; a queued or partial one resumes where it stands
			const label = frm.doc.status === names.failed ? __("Retry") : __("Resume");
			frm.add_custom_button(label, () =>
				frappe
					.call({
						method: "sales_automation.api.runs.resume_run",
						args: { run: frm.doc.name },
						freeze: true,
					})
					.then(() => frm.reload_doc())
			);
		}
	},
});
