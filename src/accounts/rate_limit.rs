//! Sign-in throttling, per client address and per account, with governor's GCRA limiters.
//!
//! Both keys are checked on every attempt, successful or not: per address stops one machine
//! trying many accounts, per account stops many machines trying one. State is in memory, so
//! each node of a cluster limits on its own; that bounds guessing to nodes × quota, which is
//! still far too slow to matter against argon2id hashes.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};

pub struct LoginLimiter {
    per_ip: DefaultKeyedRateLimiter<IpAddr>,
    per_account: DefaultKeyedRateLimiter<String>,
    checks: AtomicU64,
}

impl LoginLimiter {
    pub fn new(per_ip_per_minute: NonZeroU32, per_account_per_minute: NonZeroU32) -> Self {
        Self {
            per_ip: DefaultKeyedRateLimiter::keyed(Quota::per_minute(per_ip_per_minute)),
            per_account: DefaultKeyedRateLimiter::keyed(Quota::per_minute(per_account_per_minute)),
            checks: AtomicU64::new(0),
        }
    }

    /// `Err(wait)` when this attempt is over either quota.
    pub fn check(&self, ip: IpAddr, account: &str) -> Result<(), Duration> {
        // Forget keys whose quota has fully replenished now and then, so memory stays bounded.
        if self.checks.fetch_add(1, Ordering::Relaxed) % 1024 == 1023 {
            self.per_ip.retain_recent();
            self.per_account.retain_recent();
        }
        let now = DefaultClock::default().now();
        self.per_ip
            .check_key(&ip)
            .map_err(|not_until| not_until.wait_time_from(now))?;
        self.per_account
            .check_key(&account.to_owned())
            .map_err(|not_until| not_until.wait_time_from(now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(per_ip: u32, per_account: u32) -> LoginLimiter {
        LoginLimiter::new(
            NonZeroU32::new(per_ip).unwrap(),
            NonZeroU32::new(per_account).unwrap(),
        )
    }

    #[test]
    fn an_account_is_throttled_across_addresses() {
        let limiter = limiter(100, 2);
        let account = "a@example.org";
        assert!(limiter.check("10.0.0.1".parse().unwrap(), account).is_ok());
        assert!(limiter.check("10.0.0.2".parse().unwrap(), account).is_ok());
        let wait = limiter
            .check("10.0.0.3".parse().unwrap(), account)
            .unwrap_err();
        assert!(wait > Duration::ZERO && wait <= Duration::from_secs(30));
        assert!(
            limiter
                .check("10.0.0.3".parse().unwrap(), "b@example.org")
                .is_ok()
        );
    }

    #[test]
    fn an_address_is_throttled_across_accounts() {
        let limiter = limiter(2, 100);
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        assert!(limiter.check(ip, "a@example.org").is_ok());
        assert!(limiter.check(ip, "b@example.org").is_ok());
        assert!(limiter.check(ip, "c@example.org").is_err());
    }
}
