# Reference values for src/stats/hodges_lehmann.rs and src/stats/effect.rs.
#
# Run from the repository root:  Rscript tests/reference/hodges_lehmann.R
# Writes tests/reference/hodges_lehmann.json (samples included, so the Rust test needs
# nothing but that file). Fixed seeds: the output is the same on every run.
#
# For every case and confidence level the JSON holds:
#   r_*       what wilcox.test(x = canary, y = baseline, conf.int = TRUE, correct = TRUE)
#             returned (exact = NULL / TRUE / FALSE per `method`);
#   expected  what Augury must return, with `kind` saying where it comes from:
#     "exact"          R's own exact interval and estimate (order statistics of the
#                      pairwise differences), to be matched to rounding;
#     "asymptotic"     the pairwise differences at which R's standardised statistic
#                      crosses the normal quantile, found below by bisection over the
#                      sorted differences with R's own wilcox.test(mu = d) as the
#                      statistic. R's uniroot stops within tol.root of these points, so
#                      r_lower / r_upper / r_estimate are checked against them with that
#                      tolerance and `expected` is matched to rounding;
#     "exact_formula"  the exact-branch formula of R applied by this script to a sample
#                      with ties (R 4.2 itself falls back to the normal approximation
#                      there; Augury keeps the exact order statistics when asked to).
# plus the effect-size inputs computed by R (median, mean, U, Kayenta's CLES formula),
# and a table of qwilcox() quantiles for the exact branch.

tol_root <- 1e-4 # wilcox.test's default tol.root

fmt <- function(v) {
  stopifnot(all(is.finite(v)))
  sprintf("%.17g", v)
}
num <- function(v) if (is.null(v) || is.na(v)) "null" else fmt(v)
arr <- function(v) paste0("[", paste(fmt(v), collapse = ","), "]")
obj <- function(...) {
  kv <- list(...)
  paste0("{", paste(sprintf("\"%s\":%s", names(kv), unlist(kv)), collapse = ","), "}")
}
str <- function(s) paste0("\"", s, "\"")

# Runs wilcox.test, keeping its warnings (they say when R changed the conf.level).
run_wilcox <- function(x, y, conf, exact) {
  warnings <- character()
  r <- withCallingHandlers(
    wilcox.test(x, y, conf.int = TRUE, conf.level = conf, exact = exact, correct = TRUE),
    warning = function(w) {
      warnings <<- c(warnings, conditionMessage(w))
      invokeRestart("muffleWarning")
    })
  list(r = r, warnings = warnings)
}

# p-value of the one-sided asymptotic test of shift d, i.e. R's statistic at d.
p_shift <- function(x, y, d, alternative, correct) {
  suppressWarnings(wilcox.test(x, y, mu = d, alternative = alternative,
                               exact = FALSE, correct = correct)$p.value)
}

# The smallest distinct pairwise difference u[i] such that `holds` is FALSE just to its
# right (at the midpoint to the next distinct difference): the jump of R's step
# function where it stops holding. When it holds everywhere, R's root finder ends on
# the largest difference.
jump <- function(u, holds) {
  K <- length(u)
  mid <- function(i) {
    if (i == K) return(u[K] + 1)
    m <- (u[i] + u[i + 1]) / 2
    stopifnot(m > u[i], m < u[i + 1])
    m
  }
  if (holds(mid(K))) return(u[K])
  lo <- 1
  hi <- K
  while (lo < hi) {
    h <- (lo + hi) %/% 2
    if (holds(mid(h))) lo <- h + 1 else hi <- h
  }
  u[lo]
}

# R's exact-branch interval from the sorted differences (two-sided).
exact_formula <- function(diffs, nx, ny, conf) {
  alpha <- 1 - conf
  qu <- qwilcox(alpha / 2, nx, ny)
  if (qu == 0) qu <- 1
  ql <- nx * ny - qu
  achieved <- 2 * pwilcox(trunc(qu) - 1, nx, ny)
  level <- if (achieved - alpha > alpha / 2) 1 - achieved else conf
  list(lower = diffs[qu], upper = diffs[ql + 1], conf_level = level)
}

result_json <- function(x, y, conf, method) {
  exact <- switch(method, auto = NULL, exact = TRUE, asymptotic = FALSE)
  w <- run_wilcox(x, y, conf, exact)
  r <- w$r
  r_method <- if (grepl("exact", r$method)) "exact" else "asymptotic"
  diffs <- sort(outer(x, y, `-`))
  ties <- length(unique(c(x, y))) != length(c(x, y))
  med <- median(diffs)
  if (method == "exact" && ties) {
    stopifnot(r_method == "asymptotic") # what R 4.2 does with ties
    kind <- "exact_formula"
    f <- exact_formula(diffs, length(x), length(y), conf)
    lower <- f$lower
    upper <- f$upper
    level <- f$conf_level
    est_lo <- med
    est_hi <- med
    expected_method <- "exact"
  } else if (r_method == "exact") {
    kind <- "exact"
    lower <- r$conf.int[1]
    upper <- r$conf.int[2]
    level <- attr(r$conf.int, "conf.level")
    stopifnot(r$estimate == med)
    est_lo <- med
    est_hi <- med
    expected_method <- "exact"
  } else {
    kind <- "asymptotic"
    alpha <- 1 - conf
    u <- unique(diffs)
    # Lower limit: R's statistic (correction +1/2 where it is positive) stays above
    # qnorm(alpha/2, lower.tail = FALSE) left of it.
    lower <- jump(u, function(d) p_shift(x, y, d, "greater", TRUE) < alpha / 2)
    # Upper limit: the statistic (correction -1/2 where it is negative) stays above
    # qnorm(alpha/2) left of it.
    upper <- jump(u, function(d) p_shift(x, y, d, "less", TRUE) > alpha / 2)
    # Estimate: root of the statistic without correction; with an even number of
    # differences it is zero on a whole gap, [est_lo, est_hi].
    est_lo <- jump(u, function(d) p_shift(x, y, d, "greater", FALSE) < 0.5)
    est_hi <- jump(u, function(d) p_shift(x, y, d, "greater", FALSE) <= 0.5)
    stopifnot(isTRUE(all.equal((est_lo + est_hi) / 2, med)))
    level <- attr(r$conf.int, "conf.level")
    expected_method <- "asymptotic"
    # uniroot lands within its tolerance of the jumps (sanity check of this script).
    slack <- tol_root + 1e-12 * max(abs(c(lower, upper, est_hi, est_lo)))
    stopifnot(abs(r$conf.int[1] - lower) <= slack, abs(r$conf.int[2] - upper) <= slack)
    stopifnot(r$estimate >= est_lo - slack, r$estimate <= est_hi + slack)
  }
  obj(conf_level = num(conf),
      r_method = str(r_method),
      r_lower = num(r$conf.int[1]),
      r_upper = num(r$conf.int[2]),
      r_estimate = num(unname(r$estimate)),
      r_conf_level = num(attr(r$conf.int, "conf.level")),
      r_warnings = if (length(w$warnings) == 0) "[]" else
        paste0("[", paste(str(w$warnings), collapse = ","), "]"),
      expected = obj(kind = str(kind),
                     method = str(expected_method),
                     lower = num(lower),
                     upper = num(upper),
                     estimate = num(med),
                     estimate_lo = num(est_lo),
                     estimate_hi = num(est_hi),
                     conf_level = num(level)))
}

effect_json <- function(x, y) {
  m <- length(x)
  n <- length(y)
  ranks <- rank(c(x, y))
  r1 <- sum(ranks[seq_len(m)])
  u <- unname(suppressWarnings(wilcox.test(x, y, exact = FALSE)$statistic))
  mb <- median(y)
  obj(median_canary = num(median(x)),
      median_baseline = num(mb),
      mean_canary = num(mean(x)),
      mean_baseline = num(mean(y)),
      u = num(u),
      kayenta_cles = num((2 * r1 - m * (m + 1)) / (2 * m * n)))
}

cases <- list()
add_case <- function(name, x, y, method, confs) {
  results <- vapply(confs, function(conf) result_json(x, y, conf, method), "")
  cases[[length(cases) + 1]] <<- obj(
    name = str(name),
    method = str(method),
    canary = arr(x),
    baseline = arr(y),
    results = paste0("[", paste(results, collapse = ","), "]"),
    effect = effect_json(x, y))
}

both <- c(0.95, 0.98)

add_case("kayenta_fixture", c(10, 20, 30, 40), c(1, 2, 3, 4), "auto", both)
add_case("kayenta_fixture_asymptotic", c(10, 20, 30, 40), c(1, 2, 3, 4), "asymptotic", both)

set.seed(101)
add_case("small_no_ties", rnorm(10, 1, 1), rnorm(12, 0, 1), "auto", both)
set.seed(102)
add_case("small_no_ties_asymptotic", rnorm(10, 1, 1), rnorm(12, 0, 1), "asymptotic", both)

set.seed(103)
add_case("small_ties", round(rnorm(30, 0.5, 2)), round(rnorm(25, 0, 2)), "auto", both)

add_case("n1_exact", 5, c(1, 2, 3), "auto", both)
set.seed(104)
add_case("n1_exact_random", 0.3, rnorm(7), "auto", both)
add_case("n1_ties", 1, c(1, 1, 2), "auto", both)
add_case("one_by_one", 5, 1, "auto", both)
set.seed(105)
add_case("baseline_n1_asymptotic", rnorm(80, 2), 1.5, "auto", both)

set.seed(106)
add_case("unequal_exact", rexp(7, 1), rexp(40, 2), "auto", both)
set.seed(107)
add_case("unequal_asymptotic", rlnorm(60, 0.3, 0.8), rlnorm(200, 0, 0.8), "auto", both)

set.seed(108)
add_case("forced_exact_ties", round(rnorm(12) * 3), round(rnorm(9) * 3), "exact", both)
set.seed(109)
add_case("forced_exact_large", rnorm(60, 0.2), rnorm(80), "exact", both)

set.seed(110)
add_case("large_offset", 1e9 + rnorm(300) * 1000, 1e9 + 50 + rnorm(250) * 1000, "auto", both)

set.seed(111)
add_case("negative_baseline", rnorm(20, -3), rnorm(25, -5), "auto", both)
add_case("zero_baseline_median", c(3, 1, 4, 1, 5), c(-2, -1, 0, 1, 2), "auto", both)

# Big tie groups among otherwise distinct values: the tie correction moves the bounds.
set.seed(114)
add_case("tie_spikes", c(rep(1, 100), rexp(400)), c(rep(0, 250), rexp(750)), "auto", both)

set.seed(112)
add_case("large", rlnorm(2000, 0.05, 0.5), rlnorm(1500, 0, 0.5), "auto", both)
set.seed(113)
add_case("large_ties", round(rexp(2000, 1 / 20)), round(rexp(1500, 1 / 21)), "auto", both)

# qwilcox at alpha/2 for the usual confidence levels, computed as R does it.
levels <- c(0.99, 0.98, 0.95, 0.90)
probs <- (1 - levels) / 2
sizes <- rbind(as.matrix(expand.grid(n = 1:49, m = 1:49)),
               c(60, 80), c(100, 100), c(1, 300), c(3, 500), c(200, 2))
rows <- apply(sizes, 1, function(s) {
  q <- vapply(probs, function(p) qwilcox(p, s[1], s[2]), 0)
  arr(c(s[1], s[2], q))
})

json <- paste0(
  "{\n",
  "\"generator\":\"tests/reference/hodges_lehmann.R\",\n",
  "\"r_version\":", str(R.version.string), ",\n",
  "\"tol_root\":", num(tol_root), ",\n",
  "\"cases\":[\n", paste(unlist(cases), collapse = ",\n"), "\n],\n",
  "\"qwilcox\":{\"conf_levels\":", arr(levels), ",\"rows\":[\n",
  paste(rows, collapse = ",\n"), "\n]}\n",
  "}\n")
writeLines(json, "tests/reference/hodges_lehmann.json", sep = "")
