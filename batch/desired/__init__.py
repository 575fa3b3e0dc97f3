"""Desired state: export what the tenant holds, reconcile a sheet of what it should hold, roll a run back, and
apply exactly an approved plan.

The desired-state modes are modes of the licenses and add-ons kinds (``batch.kinds``): a reconcile turns the
drift between a sheet and the tenant into the same ``CheckedRequest``/``CheckedAddon`` and ``Operation``
records any sheet gives, so it is planned, journalled, applied, resumed and reported like any run.

- ``layout``: the columns export writes and apply/reconcile read;
- ``read``: streaming reads of every user (with department) and of groups;
- ``export``: today's state to CSV/xlsx (streaming) or a DataFrame;
- ``frames``/``drift``: the desired-versus-actual joins (pandas);
- ``reconcile``: drift -> a plan like any other; ``rollback``: a run's journal -> the plan that undoes it;
- ``approved``: plan files a reviewer approves, and the checks that refuse a stale one.
"""
