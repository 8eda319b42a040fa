"""The daemon's timetable: polls on working days at the configured times, catch-up after
the PC was off, and the check that the timetable can meet the acknowledgement deadlines.

The timetable is pure functions of the calendar and a clock; `run` is the thin shell
around APScheduler, signals and the poll."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from typing import Any

from saraban_mail.calendar import BusinessCalendar

log = logging.getLogger("saraban_mail")


def poll_times(times: list[time], cal: BusinessCalendar, before_closing_minutes: int) -> list[time]:
    """schedule.times, or by default the checks at opening and before closing (SPEC §3):
    `before_closing_minutes` (schedule.before_closing_minutes) before closing time."""
    if times:
        return sorted(times)
    afternoon = datetime.combine(date.min, cal.closing) - timedelta(minutes=before_closing_minutes)
    return [cal.opening, max(afternoon.time(), cal.opening)]


def slots(cal: BusinessCalendar, times: list[time], start: datetime, end: datetime) -> list[datetime]:
    """Scheduled polls in [start, end], on working days only."""
    found = []
    day = start.astimezone(cal.tz).date()
    while day <= end.astimezone(cal.tz).date():
        if cal.is_working_day(day):
            found += [cal.at(day, t) for t in times if start <= cal.at(day, t) <= end]
        day += timedelta(days=1)
    return found


def next_polls(cal: BusinessCalendar, times: list[time], now: datetime, count: int = 3) -> list[datetime]:
    horizon = now + timedelta(days=30)
    return [s for s in slots(cal, times, now + timedelta(seconds=1), horizon)][:count]


def timetable(cal: BusinessCalendar, times: list[time]) -> str:
    """What the poll times follow besides the holiday package's table: noted beside a
    computed next poll, so that a reader can tell the note still holds."""
    return repr(([f"{t:%H:%M}" for t in times], str(cal.tz), sorted(cal.added),
                 sorted(cal.removed)))


# Poll times each poll notes ahead for `status`: three working weeks at two polls a day.
NOTED_POLLS = 30


def noted_polls(note: dict[str, Any] | None, timetable: str, moment: datetime) -> list[datetime]:
    """The poll times after `moment` in a note ({"at", "next_polls", "timetable"}: every
    poll time after "at", in order), if the note covers `moment` (same timetable, made
    before `moment`); else none. Reading them spares loading the holiday table (0.1 s)."""
    if not note or note.get("timetable") != timetable or "at" not in note:
        return []
    if datetime.fromisoformat(note["at"]) > moment:
        return []
    after = moment + timedelta(seconds=1)  # as next_polls counts
    return [due for due in map(datetime.fromisoformat, note.get("next_polls") or [])
            if due >= after]


def missed(cal: BusinessCalendar, times: list[time], last_poll: datetime | None,
           now: datetime) -> datetime | None:
    """The scheduled poll that did not run (the PC was off), if any: catch up at once."""
    since = last_poll or now - timedelta(days=7)
    passed = slots(cal, times, since + timedelta(seconds=1), now)
    return passed[-1] if passed else None


def deadline_warnings(cal: BusinessCalendar, times: list[time], watching: bool) -> list[str]:
    """Can the checks meet SPEC §3? Out-of-hours mail is due by ack_by (10:00) of the next
    working day; mail within hours by closing time the same day. A check before closing
    leaves the last minutes to the watch (schedule.watch): without it, only a check at
    closing time acknowledges the afternoon's last mail on time."""
    warnings = []
    if not any(cal.opening <= t <= cal.ack_by for t in times):
        warnings.append(f"no poll between opening ({cal.opening:%H:%M}) and {cal.ack_by:%H:%M}: "
                        "mail from overnight will be acknowledged late")
    near = (datetime.combine(date.min, cal.closing) - timedelta(minutes=30)).time()
    if not any(near <= t for t in times):
        warnings.append(f"no poll near closing ({cal.closing:%H:%M}): mail of the afternoon will "
                        "be acknowledged after its same-day deadline")
    elif not watching and not any(t >= cal.closing for t in times):
        last = max(t for t in times if t < cal.closing)
        warnings.append(f"schedule.watch is off and the last poll is at {last:%H:%M}: mail "
                        f"arriving after it will be acknowledged after its same-day deadline "
                        f"({cal.closing:%H:%M})")
    return warnings


def backup_due(cal: BusinessCalendar, times: list[time], moment: datetime,
               last_backup: date | None) -> bool:
    """The daemon's backup ([backup] dest): once a working day, after its afternoon poll
    (the day's last scheduled one), so the day's mail is in it."""
    local = moment.astimezone(cal.tz)
    if not times or last_backup == local.date() or not cal.is_working_day(local.date()):
        return False
    return local.time() >= max(times)


class Daemon:
    """`saraban-mail run`: cron triggers in the agency's time zone, holidays skipped at run
    time, one poll at a time, never exiting on a network error. `watch`, run in a thread of
    its own, polls between the checks as mail arrives (watcher.py) through `poll_if`."""

    def __init__(self, load: Callable[[], tuple[object, BusinessCalendar, list[time], int]],
                 poll: Callable[[object], bool | None],
                 last_poll: Callable[[object], datetime | None],
                 clock: Callable[[], datetime],
                 watch: Callable[[Daemon], None] | None = None) -> None:
        self.load, self.poll_once, self.last_poll, self.clock = load, poll, last_poll, clock
        self.watch = watch
        self.config, self.cal, self.times, self.interval = load()
        self.stopping = threading.Event()
        self.reloaded = threading.Event()  # the watch reconnects with the new config
        self.started = threading.Event()  # the catch-up poll (if any) is done: watch may poll
        self.busy = threading.Lock()

    def _job(self, reason: str) -> None:
        try:
            if self.stopping.is_set():
                return
            today = self.clock().astimezone(self.cal.tz)
            if reason != "catch-up" and not self.cal.is_working_day(today.date()):
                log.info("%s: %s is not a working day; no poll", reason, today.date())
                return
            if reason == "interval" and not self.cal.within_hours(today):
                return
            if not self.busy.acquire(blocking=False):
                log.info("%s: a poll is still running", reason)
                return
            try:
                self._poll(reason)
            finally:
                self.busy.release()
        finally:
            if reason == "catch-up":
                self.started.set()

    def _poll(self, reason: str) -> bool:
        try:
            log.info("poll (%s)", reason)
            return self.poll_once(self.config) is not False
        except Exception:  # the service never exits because one poll failed
            log.exception("poll failed; the next one retries")
            return False

    def poll_if(self, reason: str, needed: Callable[[], bool]) -> bool:
        """Wait for the poll in progress, then poll if `needed()` (asked once no other poll
        runs, so it sees that poll's work) still says so. True when a poll ran and finished."""
        while not self.busy.acquire(timeout=0.5):
            if self.stopping.is_set():
                return False
        try:
            if self.stopping.is_set() or not needed():
                return False
            return self._poll(reason)
        finally:
            self.busy.release()

    def reload(self) -> None:
        try:
            self.config, self.cal, self.times, self.interval = self.load()
            log.info("configuration and rules reloaded")
            self.reloaded.set()
        except Exception as exc:
            log.error("new configuration refused, keeping the old one: %s", exc)

    def run(self) -> int:
        from apscheduler.schedulers.background import BackgroundScheduler
        from apscheduler.triggers.cron import CronTrigger
        from apscheduler.triggers.interval import IntervalTrigger

        scheduler = BackgroundScheduler(timezone=self.cal.tz)

        def schedule() -> None:
            scheduler.remove_all_jobs()
            for at in self.times:
                scheduler.add_job(self._job, CronTrigger(day_of_week="mon-fri", hour=at.hour,
                                                         minute=at.minute, timezone=self.cal.tz),
                                  args=["schedule"], misfire_grace_time=600, coalesce=True)
            if self.interval:
                scheduler.add_job(self._job, IntervalTrigger(minutes=self.interval),
                                  args=["interval"], coalesce=True)

        def on_hup(*_: object) -> None:
            self.reload()
            schedule()

        signal.signal(signal.SIGTERM, lambda *_: self.stopping.set())
        signal.signal(signal.SIGINT, lambda *_: self.stopping.set())
        if hasattr(signal, "SIGHUP"):
            signal.signal(signal.SIGHUP, on_hup)
        schedule()
        scheduler.start()
        gap = missed(self.cal, self.times, self.last_poll(self.config), self.clock())
        if gap is not None:
            log.warning("the poll of %s did not run: catching up now", f"{gap:%Y-%m-%d %H:%M}")
            scheduler.add_job(self._job, args=["catch-up"])
        else:
            self.started.set()
        watching = None
        if self.watch is not None:
            watching = threading.Thread(target=self.watch, args=(self,), name="watch",
                                        daemon=True)
            watching.start()
        upcoming = next_polls(self.cal, self.times, self.clock(), 1)
        log.info("running; next poll %s", f"{upcoming[0]:%Y-%m-%d %H:%M}" if upcoming else "-")
        self.stopping.wait()
        log.info("stopping: the current poll finishes first")
        scheduler.shutdown(wait=True)
        if watching is not None:
            # Its poll, if any, stops after the message in hand; a connection still being
            # made (a server that does not answer) is not waited for.
            watching.join(timeout=STOP_WAIT)
        with self.busy:
            pass
        log.info("stopped")
        return 0


STOP_WAIT = 10.0  # seconds SIGTERM waits for the watch beyond the poll in progress
