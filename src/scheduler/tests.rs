use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};

use super::*;

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn berlin() -> JobOptions {
    JobOptions {
        timezone: parse_timezone("Europe/Berlin").unwrap(),
        ..JobOptions::default()
    }
}

#[test]
fn an_interval_runs_every_period_from_one_period_after_it_was_added() {
    let t0 = utc("2027-01-01T00:00:00Z");
    let mut s = Scheduler::new();
    let every = Trigger::every(Duration::from_secs(30)).unwrap();
    s.add("tick", every, JobOptions::default(), t0).unwrap();
    assert_eq!(s.next_due(), Some(utc("2027-01-01T00:00:30Z")));
    assert!(s.due(utc("2027-01-01T00:00:29Z")).is_empty());
    let fires = s.due(utc("2027-01-01T00:00:30.200Z"));
    assert_eq!(fires.len(), 1);
    assert_eq!(fires[0].scheduled, utc("2027-01-01T00:00:30Z"));
    assert_eq!(s.next_due(), Some(utc("2027-01-01T00:01:00Z")));
    assert_eq!(
        s.next_run_times("tick", 3).unwrap(),
        vec![
            utc("2027-01-01T00:01:00Z"),
            utc("2027-01-01T00:01:30Z"),
            utc("2027-01-01T00:02:00Z")
        ]
    );
}

#[test]
fn cron_with_seconds_and_posix_sunday() {
    let t0 = utc("2027-01-04T10:00:01Z"); // a Monday
    let mut s = Scheduler::new();
    s.add(
        "two",
        Trigger::cron("*/2 * * * * *").unwrap(),
        JobOptions::default(),
        t0,
    )
    .unwrap();
    assert_eq!(s.next_due(), Some(utc("2027-01-04T10:00:02Z")));
    s.add(
        "sun7",
        Trigger::cron("0 0 * * 7").unwrap(),
        JobOptions::default(),
        t0,
    )
    .unwrap();
    s.add(
        "sun0",
        Trigger::cron("0 0 * * 0").unwrap(),
        JobOptions::default(),
        t0,
    )
    .unwrap();
    let sunday = utc("2027-01-10T00:00:00Z");
    assert_eq!(s.next_run_times("sun7", 1).unwrap(), vec![sunday]);
    assert_eq!(s.next_run_times("sun0", 1).unwrap(), vec![sunday]);
    // Day of month and day of week are ORed: the 15th or any Friday.
    s.add(
        "or",
        Trigger::cron("0 12 15 * 5").unwrap(),
        JobOptions::default(),
        t0,
    )
    .unwrap();
    assert_eq!(
        s.next_run_times("or", 3).unwrap(),
        vec![
            utc("2027-01-08T12:00:00Z"),
            utc("2027-01-15T12:00:00Z"),
            utc("2027-01-22T12:00:00Z")
        ]
    );
    s.add(
        "hourly",
        Trigger::cron("@hourly").unwrap(),
        JobOptions::default(),
        t0,
    )
    .unwrap();
    assert_eq!(
        s.next_run_times("hourly", 1).unwrap(),
        vec![utc("2027-01-04T11:00:00Z")]
    );
    s.add(
        "last",
        Trigger::cron("0 0 L * *").unwrap(),
        JobOptions::default(),
        t0,
    )
    .unwrap();
    assert_eq!(
        s.next_run_times("last", 1).unwrap(),
        vec![utc("2027-01-31T00:00:00Z")]
    );
}

#[test]
fn a_bad_expression_says_what_and_where() {
    let err = Trigger::cron("61 * * * *").unwrap_err();
    let text = err.to_string();
    assert!(text.contains("61 * * * *"), "{text}");
    assert!(text.contains("field 1 (minute) `61`"), "{text}");
    let text = Trigger::cron("0 30 2 * * MON-XYZ").unwrap_err().to_string();
    assert!(text.contains("field 6 (day of week) `MON-XYZ`"), "{text}");
    assert!(matches!(err, ScheduleError::BadCron { .. }));
    assert!(Trigger::cron("* * *").is_err());
    assert_eq!(
        parse_timezone("Mars/Olympus").unwrap_err(),
        ScheduleError::UnknownTimezone("Mars/Olympus".into())
    );
    assert_eq!(
        Trigger::every(Duration::ZERO).unwrap_err(),
        ScheduleError::BadInterval
    );
}

/// 02:30 daily in Europe/Berlin. On 2027-03-28 clocks go from 02:00 to
/// 03:00: there is no 02:30, and the job runs once, at 03:00 CEST (01:00
/// UTC). On 2027-10-31 they go from 03:00 back to 02:00: 02:30 happens
/// twice, and the job runs once, at the first (02:30 CEST, 00:30 UTC).
#[test]
fn daylight_saving_gap_and_overlap_in_berlin() {
    let mut s = Scheduler::new();
    let t0 = utc("2027-03-26T12:00:00Z");
    s.add("night", Trigger::cron("30 2 * * *").unwrap(), berlin(), t0)
        .unwrap();
    assert_eq!(
        s.next_run_times("night", 3).unwrap(),
        vec![
            utc("2027-03-27T01:30:00Z"), // 02:30 CET
            utc("2027-03-28T01:00:00Z"), // no 02:30: 03:00 CEST
            utc("2027-03-29T00:30:00Z"), // 02:30 CEST
        ]
    );
    // Walking through the spring-forward night minute by minute fires once.
    let mut fired = Vec::new();
    let mut now = utc("2027-03-27T23:00:00Z");
    while now < utc("2027-03-28T04:00:00Z") {
        fired.extend(s.due(now));
        now += chrono::TimeDelta::minutes(1);
    }
    assert_eq!(fired.len(), 1, "{fired:?}");
    assert_eq!(fired[0].scheduled, utc("2027-03-28T01:00:00Z"));

    let mut s = Scheduler::new();
    let t0 = utc("2027-10-29T12:00:00Z");
    s.add("night", Trigger::cron("30 2 * * *").unwrap(), berlin(), t0)
        .unwrap();
    let mut fired = Vec::new();
    let mut now = utc("2027-10-30T22:00:00Z");
    while now < utc("2027-10-31T04:00:00Z") {
        fired.extend(s.due(now));
        now += chrono::TimeDelta::minutes(1);
    }
    assert_eq!(fired.len(), 1, "{fired:?}");
    assert_eq!(fired[0].scheduled, utc("2027-10-31T00:30:00Z")); // the first 02:30
}

#[test]
fn a_clock_set_back_never_fires_an_occurrence_twice() {
    let mut s = Scheduler::new();
    let t0 = utc("2027-01-01T11:59:00Z");
    s.add(
        "noon",
        Trigger::cron("0 * * * * *").unwrap(),
        JobOptions::default(),
        t0,
    )
    .unwrap();
    assert_eq!(s.due(utc("2027-01-01T12:00:00.100Z")).len(), 1);
    // NTP steps the clock back an hour: nothing fires again until 12:01.
    assert!(s.due(utc("2027-01-01T11:00:00Z")).is_empty());
    assert!(s.due(utc("2027-01-01T12:00:30Z")).is_empty());
    let again = s.due(utc("2027-01-01T12:01:00Z"));
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].scheduled, utc("2027-01-01T12:01:00Z"));
}

#[test]
fn late_runs_are_misfires_or_coalesced() {
    let t0 = utc("2027-01-01T00:00:00Z");
    // Found due 10 s late (a jump forward): past the 1 s grace.
    let mut s = Scheduler::new();
    s.add(
        "once",
        Trigger::at(utc("2027-01-01T00:00:05Z")),
        JobOptions::default(),
        t0,
    )
    .unwrap();
    assert!(s.due(utc("2027-01-01T00:00:15Z")).is_empty());
    let st = s.job_status("once").unwrap();
    assert_eq!((st.runs, st.misfires, st.next_run), (0, 1, None));

    // Every second, then a 10 s gap: coalesced into one run (the latest
    // occurrence is on time), nothing counted missed.
    let every = || Trigger::every(Duration::from_secs(1)).unwrap();
    let mut s = Scheduler::new();
    s.add("co", every(), JobOptions::default(), t0).unwrap();
    let fires = s.due(utc("2027-01-01T00:00:11Z"));
    assert_eq!(fires.len(), 1);
    assert_eq!(fires[0].scheduled, utc("2027-01-01T00:00:11Z"));
    assert_eq!(s.next_due(), Some(utc("2027-01-01T00:00:12Z")));

    // Without coalescing: the ones within the grace time run, the older
    // ones are misfires.
    let mut s = Scheduler::new();
    let options = JobOptions {
        coalesce: false,
        ..JobOptions::default()
    };
    s.add("each", every(), options, t0).unwrap();
    let fires = s.due(utc("2027-01-01T00:00:11Z"));
    assert_eq!(fires.len(), 2, "{fires:?}"); // 00:10 and 00:11
    let st = s.job_status("each").unwrap();
    assert_eq!((st.runs, st.misfires), (2, 9));
}

#[test]
fn pause_resume_run_now_remove_and_bounds() {
    let t0 = utc("2027-01-01T00:00:00Z");
    let mut s = Scheduler::new();
    let options = JobOptions {
        start: Some(utc("2027-01-01T00:01:00Z")),
        end: Some(utc("2027-01-01T00:03:00Z")),
        ..JobOptions::default()
    };
    s.add("m", Trigger::cron("* * * * *").unwrap(), options, t0)
        .unwrap();
    assert_eq!(
        s.next_run_times("m", 10).unwrap(),
        vec![
            utc("2027-01-01T00:01:00Z"),
            utc("2027-01-01T00:02:00Z"),
            utc("2027-01-01T00:03:00Z")
        ]
    );
    s.pause("m").unwrap();
    assert_eq!(s.next_due(), None);
    assert!(s.due(utc("2027-01-01T00:01:00Z")).is_empty());
    s.resume("m", utc("2027-01-01T00:01:30Z")).unwrap();
    assert_eq!(s.next_due(), Some(utc("2027-01-01T00:02:00Z")));
    let fire = s.run_now("m", utc("2027-01-01T00:01:40Z")).unwrap();
    assert_eq!(fire.name, "m");
    assert_eq!(s.job_status("m").unwrap().runs, 1);
    assert_eq!(s.due(utc("2027-01-01T00:02:00Z")).len(), 1);
    assert_eq!(s.due(utc("2027-01-01T00:03:00Z")).len(), 1);
    assert_eq!(s.next_due(), None, "past its end");
    assert_eq!(
        s.add("m", Trigger::at(t0), JobOptions::default(), t0),
        Err(ScheduleError::DuplicateName("m".into()))
    );
    assert!(s.remove("m"));
    assert_eq!(s.pause("m"), Err(ScheduleError::NoSuchJob("m".into())));
    let backwards = JobOptions {
        start: Some(utc("2027-01-02T00:00:00Z")),
        end: Some(t0),
        ..JobOptions::default()
    };
    assert_eq!(
        s.add("x", Trigger::at(t0), backwards, t0),
        Err(ScheduleError::EndBeforeStart)
    );
}

#[test]
fn jitter_delays_within_its_bound() {
    let t0 = Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).unwrap();
    let mut s = Scheduler::new();
    let options = JobOptions {
        jitter: Duration::from_secs(5),
        misfire_grace: Duration::from_secs(1),
        ..JobOptions::default()
    };
    s.add(
        "j",
        Trigger::every(Duration::from_secs(60)).unwrap(),
        options,
        t0,
    )
    .unwrap();
    for _ in 0..50 {
        let due = s.next_due().unwrap();
        let next = s.next_run_times("j", 1).unwrap()[0];
        assert!(due >= next && due - next <= chrono::TimeDelta::seconds(5));
        // Found due at its jittered time: on time, it runs.
        assert_eq!(s.due(due).len(), 1);
    }
}

#[test]
fn nth_weekday_and_nearest_weekday() {
    let t0 = utc("2027-01-01T00:00:00Z");
    let mut s = Scheduler::new();
    // The second Tuesday of the month, and the weekday nearest the 15th.
    s.add(
        "patch",
        Trigger::cron("0 10 * * 2#2").unwrap(),
        JobOptions::default(),
        t0,
    )
    .unwrap();
    s.add(
        "mid",
        Trigger::cron("0 9 15W * *").unwrap(),
        JobOptions::default(),
        t0,
    )
    .unwrap();
    assert_eq!(
        s.next_run_times("patch", 2).unwrap(),
        vec![utc("2027-01-12T10:00:00Z"), utc("2027-02-09T10:00:00Z")]
    );
    // 2027-05-15 is a Saturday: the nearest weekday is Friday the 14th.
    let may = s.next_run_times("mid", 5).unwrap();
    assert_eq!(may[4], utc("2027-05-14T09:00:00Z"));
}

#[test]
fn absurd_durations_do_not_panic() {
    let t0 = utc("2027-01-01T00:00:00Z");
    let mut s = Scheduler::new();
    let forever = Trigger::every(Duration::from_secs(u64::MAX / 4)).unwrap();
    let options = JobOptions {
        jitter: Duration::from_secs(u64::MAX / 4),
        misfire_grace: Duration::from_secs(u64::MAX / 4),
        ..JobOptions::default()
    };
    s.add("forever", forever, options.clone(), t0).unwrap();
    assert!(s.due(utc("2100-01-01T00:00:00Z")).is_empty());
    let huge = Trigger::every(Duration::from_secs(200_000 * 365 * 86_400)).unwrap();
    s.add("huge", huge, options, t0).unwrap();
    assert!(s.due(utc("2100-01-01T00:00:00Z")).is_empty());
    let _ = s.status();
}

#[test]
fn take_due_hands_out_occurrences_and_settle_counts_their_fate() {
    let t0 = utc("2027-01-01T00:00:00Z");
    let mut s = Scheduler::new();
    let every = Trigger::every(Duration::from_secs(10)).unwrap();
    s.add("tick", every, JobOptions::default(), t0).unwrap();
    let due = s.take_due(utc("2027-01-01T00:00:10.300Z"));
    assert_eq!(due.len(), 1);
    let o = &due[0];
    assert_eq!(o.fire.scheduled, utc("2027-01-01T00:00:10Z"));
    assert_eq!(o.deadline, utc("2027-01-01T00:00:11Z"), "due + 1 s grace");
    assert_eq!(o.period, Some(Duration::from_secs(10)));
    assert_eq!(o.misfire_grace, Duration::from_secs(1));
    // Handed out, not yet counted.
    assert_eq!(s.job_status("tick").unwrap().runs, 0);
    let now = utc("2027-01-01T00:00:10.400Z");
    for outcome in [
        Outcome::Ran,
        Outcome::Late,
        Outcome::ClaimedElsewhere,
        Outcome::Unreachable,
        Outcome::Unreachable,
    ] {
        s.settle("tick", outcome, now).unwrap();
    }
    let st = s.job_status("tick").unwrap();
    assert_eq!(
        (
            st.runs,
            st.misfires,
            st.claimed_elsewhere,
            st.skipped_unreachable
        ),
        (1, 1, 1, 2)
    );
    assert_eq!(st.last_run, Some(now));
    assert_eq!(
        s.settle("gone", Outcome::Ran, now),
        Err(ScheduleError::NoSuchJob("gone".into()))
    );
    // A date job has no next occurrence: no period.
    s.add("once", Trigger::at(t0), JobOptions::default(), t0)
        .unwrap();
    let due = s.take_due(t0);
    assert_eq!(due[0].period, None);
}

#[test]
fn aligned_intervals_agree_whenever_each_node_added_them() {
    let every = || Trigger::every(Duration::from_millis(1500)).unwrap();
    let mut a = Scheduler::new();
    let mut b = Scheduler::new();
    a.set_aligned(true);
    b.set_aligned(true);
    a.add(
        "j",
        every(),
        JobOptions::default(),
        utc("2027-01-01T00:00:00.100Z"),
    )
    .unwrap();
    b.add(
        "j",
        every(),
        JobOptions::default(),
        utc("2027-01-01T00:00:07.900Z"),
    )
    .unwrap();
    let from_a = a.next_run_times("j", 12).unwrap();
    let from_b = b.next_run_times("j", 6).unwrap();
    // Multiples of 1.5 s since the epoch.
    assert!(from_a.iter().all(|t| t.timestamp_millis() % 1500 == 0));
    assert_eq!(from_a[0], utc("2027-01-01T00:00:01.500Z"));
    assert_eq!(from_b[0], utc("2027-01-01T00:00:09Z"));
    assert!(from_b.iter().all(|t| from_a.contains(t)), "{from_b:?}");
    // Unaligned, they would not agree.
    let mut c = Scheduler::new();
    c.add(
        "j",
        every(),
        JobOptions::default(),
        utc("2027-01-01T00:00:07.900Z"),
    )
    .unwrap();
    assert!(!from_a.contains(&c.next_run_times("j", 1).unwrap()[0]));
    // A given start wins over the alignment.
    let start = utc("2027-01-01T00:00:00.333Z");
    let options = JobOptions {
        start: Some(start),
        ..JobOptions::default()
    };
    a.add("s", every(), options, utc("2027-01-01T00:00:00Z"))
        .unwrap();
    assert_eq!(a.next_run_times("s", 1).unwrap(), vec![start]);
}

#[test]
fn cron_occurrences_fall_on_whole_seconds() {
    let mut s = Scheduler::new();
    let every_second = Trigger::cron("* * * * * *").unwrap();
    s.add(
        "s",
        every_second,
        JobOptions::default(),
        utc("2027-01-01T00:00:00.300Z"),
    )
    .unwrap();
    assert_eq!(
        s.next_run_times("s", 2).unwrap(),
        vec![utc("2027-01-01T00:00:01Z"), utc("2027-01-01T00:00:02Z")]
    );
    let fires = s.due(utc("2027-01-01T00:00:01.200Z"));
    assert_eq!(fires[0].scheduled, utc("2027-01-01T00:00:01Z"));
    assert_eq!(s.next_due(), Some(utc("2027-01-01T00:00:02Z")));
    // Added on a whole second, that second is the first run.
    let mut s = Scheduler::new();
    let every_second = Trigger::cron("* * * * * *").unwrap();
    s.add(
        "s",
        every_second,
        JobOptions::default(),
        utc("2027-01-01T00:00:05Z"),
    )
    .unwrap();
    assert_eq!(s.next_due(), Some(utc("2027-01-01T00:00:05Z")));
}
