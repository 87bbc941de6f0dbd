"""SlurmSpawner: the user's Jupyter server as a Slurm job running as the user's own uid.

Submit and cancel go through ``sudo -n -u USER`` with argument lists; status comes from the
hub-wide JobMonitor (one squeue for all jobs, no sudo). The job tells the hub its port through
the port-only callback in ``callback.py``.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac

from jupyterhub.spawner import Spawner
from jupyterhub.utils import maybe_future
from traitlets import Bool, Callable, Dict, Float, Instance, Integer, List, Unicode, default

from ..config.apps import app_url
from ..config.models import SiteConfig
from ..core import clock
from ..metrics import registry as metrics
from ..slurm.client import SlurmClient, SlurmError, SlurmUnavailable
from ..slurm.explain import explain_pending
from ..slurm.jobscript import render_job_script
from ..slurm.runner import CommandTimeout, run
from .errors import spawn_error
from .eventlog import ERROR, INFO, WARNING, log_event
from .job import JobMixin
from .monitor import NOT_QUERIED, UNKNOWN, JobMonitor
from .options import OptionsMixin
from .reporting import ReportingMixin
from .startmail import send_start_mail


def token_digest(token: str) -> str:
    """The SHA-256 of a server token: what the spawner keeps to recognise its callback."""
    return hashlib.sha256(token.encode()).hexdigest()


class SlurmSpawner(JobMixin, ReportingMixin, OptionsMixin, Spawner):
    """Runs each single-user server as a Slurm batch job owned by the user."""

    site = Instance(
        SiteConfig,
        help=(
            "The site file's model, loaded once by the hub and set by its wiring. Every "
            "spawner reads this one object (it is never copied); the settings below come from it."
        ),
    ).tag(config=True)
    poll_interval_s = Float(
        help="Seconds between the hub-wide monitor's batched squeue queries (slurm.poll_interval)."
    ).tag(config=True)
    job_environment = Dict(
        help="Extra environment variables written into the job script (no secrets)."
    ).tag(config=True)
    internal_pre_spawn_hooks = List(
        help=(
            "hpchub's own hooks before a spawn (course staging), set by the site wiring. They "
            "run before, and in addition to, a site's own pre_spawn_hook."
        ),
    ).tag(config=True)
    cancel_on_hub_shutdown = Bool(
        False, help="Whether stopping the hub cancels jobs (normally no: servers outlive the hub)."
    ).tag(config=True)

    runner = Callable(
        run,
        help="Runs a command from an argument list (sudo, Slurm); tests put a fake Slurm here.",
    )

    # Runtime state (kept in the hub database through get_state/load_state).
    resources = Dict(
        help="The validated request of the running job (profile, limits, idle timeout)."
    )
    last_exit = Dict(help="Why the last job ended, kept until the next start (home page).")
    last_options = Dict(
        help="Options of the last accepted start; a refused request reverts to them."
    )
    extended_s = Integer(0, help="Seconds the Extend button has added to the running job.")
    job_id = Unicode("")
    token_sha256 = Unicode("")
    job_host = Unicode("")
    job_port = Integer(0)

    @default("env_keep")
    def _env_keep_default(self):
        # The hub's PATH or VIRTUAL_ENV mean nothing on a compute node; the job script sets them.
        return ["LANG", "LC_ALL"]

    @default("apply_user_options")
    def _apply_user_options_default(self):
        # Options are validated and applied in start(), through resolve_resources.
        return lambda spawner, options: None

    @default("start_timeout")
    def _start_timeout_default(self):
        return 300

    @default("http_timeout")
    def _http_timeout_default(self):
        return 120

    @default("poll_interval")
    def _poll_interval_default(self):
        return 30

    async def run_pre_spawn_hook(self):
        for hook in self.internal_pre_spawn_hooks:
            await maybe_future(hook(self))
        await maybe_future(super().run_pre_spawn_hook())

    @default("site")
    def _site_default(self) -> SiteConfig:
        return SiteConfig()  # the shipped defaults; the hub's wiring sets the site's own

    @default("poll_interval_s")
    def _poll_interval_s_default(self) -> float:
        return float(self.site.slurm.poll_interval)

    # -- what the site says ------------------------------------------------------
    @property
    def port_range(self) -> tuple[int, int]:
        lo, hi = self.site.singleuser.port_range
        return lo, hi

    @property
    def hub_name(self) -> str:
        return self.site.hub.name

    @property
    def log_dir(self) -> str:
        return self.site.singleuser.log_dir

    @property
    def prefix_bin(self) -> str:
        return str(self.site.singleuser.prefix).rstrip("/") + "/bin"

    # -- helpers ---------------------------------------------------------------
    @property
    def client(self) -> SlurmClient:
        return SlurmClient(self.site.slurm, runner=self.runner)

    @property
    def monitor(self) -> JobMonitor:
        cancels = self.site.hub.data_dir / "pending-cancels.json"
        return JobMonitor.shared(self.client, self.poll_interval_s, cancels)

    # -- state -----------------------------------------------------------------
    def get_state(self):
        state = super().get_state()
        if self.last_exit:
            state["last_exit"] = dict(self.last_exit)
        if self.last_options:
            state["last_options"] = dict(self.last_options)
        if self.job_id:
            state.update(
                job_id=self.job_id,
                token_sha256=self.token_sha256,
                job_host=self.job_host,
                job_port=self.job_port,
                resources=dict(self.resources),
                extended_s=self.extended_s,
            )
        return state

    def load_state(self, state):
        super().load_state(state)
        self.job_id = state.get("job_id", "")
        self.token_sha256 = state.get("token_sha256", "")
        self.job_host = state.get("job_host", "")
        self.job_port = int(state.get("job_port", 0) or 0)
        self.resources = dict(state.get("resources") or {})
        self.extended_s = int(state.get("extended_s", 0) or 0)
        self.last_exit = dict(state.get("last_exit") or {})
        self.last_options = dict(state.get("last_options") or {})
        if self.job_id:
            self.monitor.watch(self.job_id)

    def clear_state(self):
        # last_exit stays: the user reads it on the home page the next time they come back.
        super().clear_state()
        if self.job_id:
            self.monitor.unwatch(self.job_id)
        self.job_id = ""
        self.token_sha256 = ""
        self.job_host = ""
        self.job_port = 0
        self.resources = {}
        self.extended_s = 0

    def _persist(self, now: bool = True) -> None:
        """Put the state on the server's hub database row; ``now`` commits it at once.

        Only what a hub restart cannot do without commits at once: the submitted job (or it
        runs unknown to the hub), the reported port (the job reports it once) and an extension.
        The rest rides on the hub's next commit: JupyterHub saves get_state() itself right
        after start() returns and after a stop. Each commit holds the hub's one event loop
        until the database has written it, and every request of every user waits meanwhile.
        """
        if self.orm_spawner is None:
            return
        self.orm_spawner.state = self.get_state()
        if now:
            self.commit_hub_db()

    # -- the callback ----------------------------------------------------------
    def owns_token(self, token: str) -> bool:
        """Whether ``token`` is this server's own API token."""
        return bool(self.token_sha256) and hmac.compare_digest(
            token_digest(token), self.token_sha256
        )

    async def get_url(self):
        """Where the server is, for a hub that restarted (JupyterHub calls this then).

        A job that was still queued or starting when the hub stopped has no start() any more:
        wait here for it to run and report its port, then hand JupyterHub the real address.
        """
        if not self.job_id or self.server is None:
            return await super().get_url()
        if not self.job_port:
            log_event(self, INFO, "start resumed after a hub restart")
            self._port_future = asyncio.get_running_loop().create_future()
            try:
                await self._wait_until_up()
            except Exception as err:  # the job ended or waited too long: JupyterHub cleans up
                log_event(self, WARNING, "resumed start failed", error=err)
                await self._cancel_quietly()
                return await super().get_url()
        elif not self.job_host:
            await self.resume_address()
        return f"http://{self.job_host}:{self.job_port}{self.server.base_url}"

    async def resume_address(self) -> str:
        """The node address of this (running) job, for a start resumed after a hub restart."""
        await self.monitor.refresh()
        st = self.monitor.status(self.job_id)
        host = st.info.host if st.info and st.info.host else ""
        self.job_host = await self._node_address(host) if host else "127.0.0.1"
        self._persist(now=False)  # a lost one is found again
        return self.job_host

    def port_reported(self, port: int) -> None:
        """Called by the callback handler with a validated port."""
        self.job_port = port
        fut = getattr(self, "_port_future", None)
        if fut is not None and not fut.done():
            fut.set_result(port)
        self._persist()

    _ended_by_job = False

    def server_ended(self) -> None:
        """Called by the callback handler when the job says its server has exited."""
        self._ended_by_job = True

    # -- lifecycle -------------------------------------------------------------
    async def start(self):
        self._ended_by_job = False
        try:
            req = await self.resolve_resources(self.user_options)
        except Exception:
            self.forget_rejected_options(self.last_options)
            raise
        self.last_options = req.to_options()
        # The server opens in the chosen app (JupyterHub passes it as JUPYTERHUB_DEFAULT_URL).
        self.default_url = app_url(req.app, self.site.singleuser.default_url)
        job = self.build_job(req)
        self.resources = req.summary()
        script = render_job_script(job)
        self.token_sha256 = token_digest(self.api_token)
        self._port_future = asyncio.get_running_loop().create_future()
        env = self.get_env()
        await self._prepare_log_dir()
        try:
            job_id = await self.client.submit(self.user.name, script, env)
        except SlurmUnavailable as err:
            raise spawn_error(
                f"Slurm is not answering right now, so no server could be started: {err}",
                reason="slurm-unavailable",
                status_code=503,
            ) from None
        except SlurmError as err:
            raise spawn_error(
                f"Slurm refused the job: {err}", reason="sbatch-refused", status_code=400
            ) from None
        except CommandTimeout as err:
            raise spawn_error(str(err), reason="sbatch-timeout", status_code=503) from None
        self.job_id = job_id
        metrics.submitted(req.profile)
        self.last_exit = {}
        self._persist()
        log_event(
            self, INFO, "job submitted", profile=req.profile, partitions=",".join(req.partitions)
        )
        self.monitor.watch(job_id, fast=True)
        try:
            return await self._wait_until_up()
        except Exception:
            # Our own give-ups (pending too long, Slurm errors). A CancelledError from a hub
            # shutdown is not one: the job is kept and found again after the restart.
            await self._cancel_quietly()
            raise

    async def _wait_until_up(self):
        """Wait for RUNNING and the port report; fail with Slurm's reason if the job ends."""
        queued_since = clock.now()
        while True:
            st = self.monitor.status(self.job_id)
            if st.ended:
                raise spawn_error(await self.describe_end(st), reason="job-ended")
            if (
                st.state == "PENDING"
                and clock.now() - queued_since > self.site.singleuser.pending_timeout
            ):
                raise spawn_error(
                    f"The job waited longer than {self.site.singleuser.pending_timeout} s in the queue "
                    f"({explain_pending(st.info.reason if st.info else '')}). "
                    "Try a smaller request or another profile.",
                    reason="pending-timeout",
                )
            if self._ended_by_job:
                raise spawn_error(
                    "The server exited right after it started; see its log.", reason="ended"
                )
            if st.state == "RUNNING" and st.info and st.info.host and self._port_future.done():
                self.job_host = await self._node_address(st.info.host)
                self._persist(now=False)  # JupyterHub commits on return
                metrics.queue_left(st.info, self.resources.get("profile", ""), queued_since)
                log_event(self, INFO, "server up", host=self.job_host, port=self.job_port)
                # The time in Slurm's queue, not the server's own start-up after it.
                waited = metrics.queue_wait(st.info, queued_since) or 0.0
                self._start_mail = asyncio.ensure_future(send_start_mail(self, waited))
                return (self.job_host, self.job_port)
            waits = [asyncio.ensure_future(self.monitor.wait_for_change(self.poll_interval_s))]
            if not self._port_future.done():
                waits.append(asyncio.ensure_future(asyncio.shield(self._port_future)))
            _done, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            for p in pending:
                p.cancel()
            if self._port_future.done():
                # The server reported before the monitor saw RUNNING: ask Slurm now.
                await self.monitor.refresh()

    async def _node_address(self, node: str) -> str:
        try:
            nodes = await self.client.nodes()
        except (SlurmError, CommandTimeout, OSError):
            return node
        info = nodes.get(node)
        return info.address if info and info.address else node

    async def _cancel_quietly(self) -> None:
        if not self.job_id:
            return
        try:
            await self.client.cancel(self.user.name, self.job_id)
        except SlurmUnavailable:
            self.monitor.cancel_later(self.user.name, self.job_id)
        except (SlurmError, CommandTimeout) as err:
            log_event(self, ERROR, "cancel failed", error=err)

    async def poll(self):
        if not self.job_id:
            return 0
        st = await self.monitor.current(self.job_id)
        if st.state in (UNKNOWN, NOT_QUERIED) or st.active:
            return None
        if self.last_exit.get("job_id") != self.job_id:
            self.last_exit = {
                "job_id": self.job_id,
                "state": st.state,
                "message": await self.describe_exit(st),
                "at": clock.utcnow().isoformat(timespec="seconds"),
            }
            log_event(self, INFO, "job ended", state=st.state)
            self._persist(now=False)  # JupyterHub's stop commits it
        return 1

    async def stop(self, now=False):
        if not self.job_id:
            return
        if self._ended_by_job:
            # The job ends by itself once the hub has answered it: wait, then record why.
            await self._await_end(60)
            if not self.monitor.status(self.job_id).ended:
                await self._cancel_quietly()
            await self.poll()
            return
        try:
            await self.client.cancel(self.user.name, self.job_id)
        except (SlurmUnavailable, CommandTimeout):
            log_event(self, WARNING, "cancel deferred: Slurm unreachable, retried each round")
            self.monitor.cancel_later(self.user.name, self.job_id)
            return
        except SlurmError as err:
            log_event(self, ERROR, "scancel failed", error=err)
            return
        # Wait (bounded) until Slurm no longer runs it, so a restart gets fresh resources.
        await self._await_end(30)

    async def _await_end(self, seconds: float) -> None:
        deadline = clock.now() + seconds
        self.monitor.watch(self.job_id, fast=True)
        while clock.now() < deadline:
            st = self.monitor.status(self.job_id)
            if st.ended:
                break
            await self.monitor.wait_for_change(2)
