# Independent statistics for one trial's outcome frame, computed in R, for fdkit's cross-check.
#
# Usage: Rscript crosscheck.R FRAME.csv OUT.csv OUTCOMES STATISTICS RESAMPLES SEED [DRAWS.csv [GRID.csv]]
#   FRAME.csv   one row per person: arm (treatment/control), block (wave x stratum),
#               stratum, and for each outcome NAME the columns NAME and NAME_baseline
#   OUTCOMES    comma-separated outcome names
#   STATISTICS  comma-separated randomisation statistics of the ratio to compute (each of
#               score, studentised, difference)
#   RESAMPLES   re-draws for each randomisation test
#   DRAWS.csv   optional: re-draws of the assignment made elsewhere (one row per re-draw, one
#               0/1 column per person, rows of FRAME.csv in order), tested as given
#   GRID.csv    optional: columns outcome, test (score, studentised, difference or poisson), k:
#               grid points (a k / 10 % reduction) at which to run that test on DRAWS.csv
# Writes OUT.csv with columns outcome, quantity, value, mcse (the Monte Carlo SE of a
# resampled p-value, else NA). Nothing here calls or copies fdkit: every figure is computed
# from its definition, with coin, sandwich and base R.
#
# Every randomisation test reports three p-values from a signed statistic T (negative: fewer
# events among the treated than the hypothesis says), the actual assignment's T_obs against the
# B re-draws' T_b: p_reduction = (1 + #{T_b <= T_obs}) / (B + 1), p_increase = (1 + #{T_b >=
# T_obs}) / (B + 1), and the equal-tailed p = min(1, 2 min(p_reduction, p_increase)).

suppressPackageStartupMessages({
  library(coin)
  library(sandwich)
})

args <- commandArgs(trailingOnly = TRUE)
frame <- read.csv(args[1], stringsAsFactors = FALSE, colClasses = c(block = "character", stratum = "character"))
out_path <- args[2]
outcomes <- strsplit(args[3], ",")[[1]]
statistics <- strsplit(args[4], ",")[[1]]
resamples <- as.integer(args[5])
seed <- as.integer(args[6])
given_draws <- if (length(args) >= 7) unname(as.matrix(read.csv(args[7], header = FALSE))) else NULL
grid_points <- if (length(args) >= 8) read.csv(args[8], stringsAsFactors = FALSE) else NULL

treated <- frame$arm == "treatment"
z <- as.numeric(treated)
n_t <- sum(z)
n_c <- length(z) - n_t
block <- factor(frame$block)
# Treatment first, so that coin's linear statistic (the outcomes summed over the first level of
# a two-level factor) is the treated sum and "less" means fewer events among the treated.
arm <- factor(frame$arm, levels = c("treatment", "control"))
control <- glm.control(epsilon = 1e-12, maxit = 100)
results <- list()
add <- function(outcome, quantity, value, mcse = NA_real_) {
  results[[length(results) + 1]] <<- data.frame(outcome = outcome, quantity = quantity, value = value, mcse = mcse)
}
one_sided_mcse <- function(p, b) sqrt(p * (1 - p) / b)
# An equal-tailed p is twice a one-sided share p / 2: its SE is 2 sqrt((p/2)(1 - p/2) / B).
equal_tailed_mcse <- function(p, b) 2 * sqrt((p / 2) * (1 - p / 2) / b)

# Re-draws of the design: each block keeps its treated count (a B x n 0/1 matrix).
redraws <- function(b) {
  draws <- matrix(0, nrow = b, ncol = length(treated))
  for (level in levels(block)) {
    members <- which(block == level)
    k <- sum(treated[members])
    for (i in seq_len(b)) draws[i, members[sample.int(length(members), k)]] <- 1
  }
  draws
}

# u / s, where s is 0: 0 for a zero u, else an infinity of u's sign.
signed_ratio <- function(u, s) {
  tiny <- 1e-12 * max(1, abs(u))
  ifelse(s > 0, u / s, ifelse(abs(u) > tiny, sign(u) * Inf, 0))
}

# The three p-values from the statistics of the actual assignment (first) and of the re-draws.
tail_p <- function(values) {
  observed <- values[1]
  drawn <- values[-1]
  tolerance <- 1e-9 * (if (is.finite(observed)) max(1, abs(observed)) else 1)
  reduction <- (1 + sum(drawn <= observed + tolerance)) / length(values)
  increase <- (1 + sum(drawn >= observed - tolerance)) / length(values)
  c(reduction = reduction, increase = increase, equal = min(1, 2 * min(reduction, increase)))
}

# The randomisation statistics of the ratio of means, for the hypothesis that treatment
# multiplies the mean outcome by theta, for the actual assignment and every re-draw (rows of
# candidates). Written from their definitions, one candidate assignment c at a time.
#
# score: the robust score statistic of theta in E[y] = mu theta^z. Under the hypothesis mu is
#   estimated from all the data, sum(y) / (theta n_t + n_c); the residuals r = y - mu theta^z
#   are those of the actual assignment z, and so is the projection a of z on the intercept
#   (weighted by the fitted means): a = theta n_t / (theta n_t + n_c). Each candidate gives
#   U = sum c r over sqrt(V), V = sum (c - a)^2 r^2.
# studentised: each actually treated outcome divided by theta (what it would have been
#   untreated), then the difference in means between the candidate's arms, centred at its
#   expectation over the design (each block's mean times its treated count), over the Welch
#   scale sqrt(s_t^2 / n_t + s_c^2 / n_c) recomputed for the candidate.
# difference: that centred difference alone.
ratio_statistics <- function(y, candidates, theta, statistic) {
  if (statistic == "score") {
    mu <- sum(y) / (theta * n_t + n_c)
    r <- y - mu * theta^z
    a <- theta * n_t / (theta * n_t + n_c)
    return(apply(candidates, 1, function(c) signed_ratio(sum(c * r), sqrt(sum((c - a)^2 * r^2)))))
  }
  if (!statistic %in% c("studentised", "difference")) stop("unknown statistic: ", statistic)
  untreated <- ifelse(treated, y / theta, y)
  expected <- sum(tapply(seq_along(y), block, function(i) mean(untreated[i]) * sum(treated[i])))
  apply(candidates, 1, function(c) {
    centred <- (sum(untreated[c == 1]) - expected) * (1 / n_t + 1 / n_c)
    if (statistic == "difference") return(centred)
    signed_ratio(centred, sqrt(var(untreated[c == 1]) / n_t + var(untreated[c == 0]) / n_c))
  })
}
ratio_p <- function(y, draws, theta = 1, statistic = "score") {
  tail_p(ratio_statistics(y, rbind(z, draws), theta, statistic))
}

# The robust score test of the treatment coefficient in the Poisson model (Boos 1992). The model
# without treatment is fitted once by glm, with beta z as an offset (beta: the hypothesised
# coefficient); R are its covariates, W = diag(fitted means), r its residuals. At beta = 0 each
# candidate c is projected on the covariates itself, c~ = c - R (R'WR)^-1 R'W c, which uses
# the candidate and the data alone (an exact test). At other beta the actual assignment's
# projection zhat = R (R'WR)^-1 R'W z is held for every candidate. The statistic is U / sqrt(V)
# with U = sum c~ r and V = sum c~^2 r^2 at beta = 0, U = sum c r and V = sum (c - zhat)^2 r^2
# elsewhere.
poisson_score_p <- function(data, draws, beta = 0) {
  null_fit <- suppressWarnings(
    glm(y ~ stratum + log1p(baseline), family = poisson, data = data, offset = beta * z, control = control)
  )
  if (!null_fit$converged) stop("the null Poisson model did not converge at beta = ", beta)
  covariates <- model.matrix(null_fit)
  weighted <- covariates * fitted(null_fit)
  residual <- data$y - fitted(null_fit)
  hat <- covariates %*% solve(crossprod(covariates, weighted)) %*% t(weighted)  # c -> its projection
  zhat <- as.vector(hat %*% z)
  values <- apply(rbind(z, draws), 1, function(c) {
    if (beta == 0) {
      tilde <- c - as.vector(hat %*% c)
      signed_ratio(sum(tilde * residual), sqrt(sum(tilde^2 * residual^2)))
    } else {
      signed_ratio(sum(c * residual), sqrt(sum((c - zhat)^2 * residual^2)))
    }
  })
  tail_p(values)
}

# coin's stratified test of the treated sum, approximate (Monte Carlo) distribution, in one
# direction. The same seed before each direction gives both the same re-draws.
coin_p <- function(y, alternative, resamples, seed) {
  set.seed(seed)
  test <- independence_test(
    y ~ arm | block,
    data = data.frame(y = y, arm = arm, block = block),
    distribution = approximate(nresample = resamples), alternative = alternative
  )
  if (abs(statistic(test, type = "linear") - sum(y[treated])) > 1e-9 * max(1, sum(y))) {
    stop("coin's linear statistic is not the treated sum")
  }
  as.numeric(pvalue(test))
}

# Fieller's interval for theta = mean_t / mean_c, inverting Welch's test of
# mean_t - theta * mean_c = 0 with Welch's degrees of freedom at theta. For a fixed critical
# value the limits solve the quadratic (m_t - theta m_c)^2 = q^2 (a_t + theta^2 a_c); the
# degrees of freedom (hence q) depend on theta, so each limit is found by fixed-point
# iteration: solve with q, recompute q at that limit, repeat until it stops moving.
fieller <- function(y_t, y_c, alpha = 0.05) {
  m_t <- mean(y_t); m_c <- mean(y_c)
  a_t <- var(y_t) / length(y_t); a_c <- var(y_c) / length(y_c)
  welch_df <- function(theta) {
    part_t <- a_t; part_c <- theta^2 * a_c
    (part_t + part_c)^2 / (part_t^2 / (length(y_t) - 1) + part_c^2 / (length(y_c) - 1))
  }
  limit <- function(side) {
    theta <- m_t / m_c
    for (i in 1:200) {
      q <- qt(1 - alpha / 2, welch_df(theta))
      a <- m_c^2 - q^2 * a_c; b <- -2 * m_t * m_c; c <- m_t^2 - q^2 * a_t
      disc <- b^2 - 4 * a * c
      if (a <= 0 || disc < 0) return(NA_real_)  # unbounded: the quadratic has no finite interval
      new <- (-b + side * sqrt(disc)) / (2 * a)
      if (abs(new - theta) < 1e-13) break
      theta <- new
    }
    theta
  }
  c(low = limit(-1), high = limit(+1))
}

add_tails <- function(outcome, name, p, b = NA) {
  add(outcome, paste0(name, "_reduction_p"), p[["reduction"]], if (is.na(b)) NA else one_sided_mcse(p[["reduction"]], b))
  add(outcome, paste0(name, "_increase_p"), p[["increase"]], if (is.na(b)) NA else one_sided_mcse(p[["increase"]], b))
  add(outcome, paste0(name, "_p"), p[["equal"]], if (is.na(b)) NA else equal_tailed_mcse(p[["equal"]], b))
}

for (outcome in outcomes) {
  y <- frame[[outcome]]
  baseline <- frame[[paste0(outcome, "_baseline")]]
  y_t <- y[treated]; y_c <- y[!treated]

  # (a) coin's stratified test. Its linear statistic, standardised by its permutation mean and
  # variance (fixed by the design), orders the re-draws as the centred difference in means
  # does, so its one-sided tests are fdkit's "difference" statistic's. coin's Monte Carlo
  # p-value is #{as extreme} / B; the equal-tailed p is built from the two one-sided ones.
  less <- coin_p(y, "less", resamples, seed)
  greater <- coin_p(y, "greater", resamples, seed)
  add_tails(outcome, "coin", c(reduction = less, increase = greater, equal = min(1, 2 * min(less, greater))), resamples)

  # (b) the ratio's statistics, written out above, on R's own re-draws (the difference
  # statistic's test on independent re-draws is coin's, in (a)).
  for (i in seq_along(statistics)) {
    if (statistics[i] == "difference") next
    set.seed(seed + i)
    add_tails(outcome, statistics[i], ratio_p(y, redraws(resamples), statistic = statistics[i]), resamples)
  }

  # (c) Welch's t-test and Fieller's interval, as % reductions 100 * (1 - theta).
  add(outcome, "welch_p", t.test(y_t, y_c, var.equal = FALSE)$p.value)
  limits <- fieller(y_t, y_c)
  add(outcome, "fieller_low_pct", 100 * (1 - limits[["high"]]))
  add(outcome, "fieller_high_pct", 100 * (1 - limits[["low"]]))

  # (d) Poisson quasi-likelihood regression with sandwich errors, and its score test.
  data <- data.frame(y = y, arm = arm, stratum = factor(frame$stratum), baseline = baseline)
  data$arm <- relevel(data$arm, "control")
  fit <- suppressWarnings(glm(y ~ arm + stratum + log1p(baseline), family = poisson, data = data, control = control))
  add(outcome, "poisson_converged", as.numeric(fit$converged))
  add(outcome, "poisson_coefficient", coef(fit)[["armtreatment"]])
  add(outcome, "poisson_pct_reduction", 100 * (1 - exp(coef(fit)[["armtreatment"]])))
  add(outcome, "poisson_se_hc0", sqrt(vcovHC(fit, type = "HC0")["armtreatment", "armtreatment"]))
  add(outcome, "poisson_se_hc1", sqrt(vcovHC(fit, type = "HC1")["armtreatment", "armtreatment"]))
  set.seed(seed + length(statistics) + 1)
  add_tails(outcome, "poisson_score", poisson_score_p(data, redraws(resamples)), resamples)

  # The same tests on re-draws supplied by the caller (fdkit's own), so the p-values must agree
  # exactly: this checks the statistics and the counting, free of Monte Carlo error. First at
  # no effect, then at each grid point asked for: k is a k / 10 % reduction, the ratio
  # theta = (1000 - k) / 1000, and log(theta) the Poisson model's treatment coefficient.
  if (!is.null(given_draws)) {
    for (statistic in statistics) {
      add_tails(outcome, paste0("given_", statistic), ratio_p(y, given_draws, statistic = statistic))
    }
    add_tails(outcome, "given_poisson_score", poisson_score_p(data, given_draws))
    points <- if (is.null(grid_points)) data.frame(k = numeric(0)) else grid_points[grid_points$outcome == outcome, ]
    for (i in seq_len(nrow(points))) {
      k <- points$k[i]
      theta <- (1000 - k) / 1000
      p <- if (points$test[i] == "poisson") {
        poisson_score_p(data, given_draws, beta = log(theta))
      } else {
        ratio_p(y, given_draws, theta = theta, statistic = points$test[i])
      }
      add(outcome, paste0("grid_p_", points$test[i], "_", k), p[["equal"]])
    }
  }

  # (e) Mann-Whitney / Wilcoxon rank-sum, normal approximation with the tie correction, with
  # and without the continuity correction (scipy's default applies it).
  add(outcome, "wilcox_p_corrected", wilcox.test(y_t, y_c, exact = FALSE, correct = TRUE)$p.value)
  add(outcome, "wilcox_p_uncorrected", wilcox.test(y_t, y_c, exact = FALSE, correct = FALSE)$p.value)
}

write.csv(do.call(rbind, results), out_path, row.names = FALSE)
