"""The spawn form: rendering the choices with live cluster state, and reading a submission."""
