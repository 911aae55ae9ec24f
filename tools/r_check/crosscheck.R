# Independent statistics for one trial's outcome frame, computed in R, for fdkit's cross-check.
#
# Usage: Rscript crosscheck.R FRAME.csv OUT.csv OUTCOMES RESAMPLES SEED [DRAWS.csv [GRID.csv]]
#   FRAME.csv  one row per person: arm (treatment/control), block (wave x stratum),
#              stratum, and for each outcome NAME the columns NAME and NAME_baseline
#   OUTCOMES   comma-separated outcome names
#   RESAMPLES  re-draws for each randomisation test
#   DRAWS.csv  optional: re-draws of the assignment made elsewhere (one row per re-draw, one
#              0/1 column per person, rows of FRAME.csv in order), tested as given
#   GRID.csv   optional: columns outcome, test (studentised or score), k: grid points (a
#              k / 10 % reduction) at which to run that test on DRAWS.csv
# Writes OUT.csv with columns outcome, quantity, value, mcse (the Monte Carlo SE of a
# resampled p-value, else NA). Nothing here calls or copies fdkit: every figure is computed
# from its definition, with coin, sandwich and base R.

suppressPackageStartupMessages({
  library(coin)
  library(sandwich)
})

args <- commandArgs(trailingOnly = TRUE)
frame <- read.csv(args[1], stringsAsFactors = FALSE, colClasses = c(block = "character", stratum = "character"))
out_path <- args[2]
outcomes <- strsplit(args[3], ",")[[1]]
resamples <- as.integer(args[4])
seed <- as.integer(args[5])
given_draws <- if (length(args) >= 6) unname(as.matrix(read.csv(args[6], header = FALSE))) else NULL
grid_points <- if (length(args) >= 7) read.csv(args[7], stringsAsFactors = FALSE) else NULL

treated <- frame$arm == "treatment"
block <- factor(frame$block)
results <- list()
add <- function(outcome, quantity, value, mcse = NA_real_) {
  results[[length(results) + 1]] <<- data.frame(outcome = outcome, quantity = quantity, value = value, mcse = mcse)
}
p_mcse <- function(p, b) sqrt(p * (1 - p) / b)

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

# The Welch-type studentised randomisation test, written from its definition: the difference
# in means minus its expectation over re-draws, divided by sqrt(s_t^2/n_t + s_c^2/n_c),
# recomputed for every re-draw; two-sided, (1 + #{|T_b| >= |T_obs|}) / (B + 1).
# With studentise = FALSE the statistic is the centred difference alone (unstudentised).
randomisation_statistic <- function(y, z, expected, studentise) {
  n_t <- sum(z)
  centred <- (sum(y[z == 1]) - expected) * (1 / n_t + 1 / (length(y) - n_t))
  if (!studentise) return(abs(centred))
  scale <- sqrt(var(y[z == 1]) / n_t + var(y[z == 0]) / (length(y) - n_t))
  if (scale > 0) abs(centred) / scale else if (abs(centred) > 1e-12) Inf else 0
}
randomisation_p <- function(y, draws, studentise = TRUE) {
  # The treated sum's expectation over re-draws: each block's mean times its treated count.
  expected <- sum(tapply(seq_along(y), block, function(i) mean(y[i]) * sum(treated[i])))
  observed <- randomisation_statistic(y, as.numeric(treated), expected, studentise)
  null <- apply(draws, 1, function(z) randomisation_statistic(y, z, expected, studentise))
  (1 + sum(null >= observed - 1e-9 * max(1, observed))) / (nrow(draws) + 1)
}

# The robust score test of the treatment coefficient, by randomisation (Boos 1992): fit the
# model without treatment once; for an assignment c, project c on the covariates with the
# fitted weights, c~ = c - R (R'WR)^-1 R'W c; the statistic is (c~'r)^2 / sum(c~^2 r^2).
# The null model does not depend on the assignment, so every re-draw reuses it.
# beta is the hypothesised coefficient, entered as the offset beta * treated.
score_p <- function(data, draws, beta = 0) {
  null_fit <- suppressWarnings(
    glm(y ~ stratum + log1p(baseline), family = poisson, data = data, offset = beta * as.numeric(treated))
  )
  covariates <- model.matrix(null_fit)
  mu <- fitted(null_fit)
  residual <- data$y - mu
  candidates <- rbind(as.numeric(treated), draws)
  projected <- candidates - (candidates %*% (covariates * mu)) %*% solve(crossprod(covariates, covariates * mu)) %*%
    t(covariates)
  score <- as.vector(projected %*% residual)
  variance <- as.vector(projected^2 %*% residual^2)
  statistic <- ifelse(variance > 0, score^2 / variance, 0)
  (1 + sum(statistic[-1] >= statistic[1] - 1e-9 * max(1, statistic[1]))) / nrow(candidates)
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

for (outcome in outcomes) {
  y <- frame[[outcome]]
  baseline <- frame[[paste0(outcome, "_baseline")]]
  y_t <- y[treated]; y_c <- y[!treated]

  # (a) randomisation tests. coin's linear statistic for a two-level factor within blocks is
  # the blocks' summed treated outcomes; standardised by its permutation mean and variance
  # (fixed by the design), so the two-sided test is the unstudentised difference in means.
  set.seed(seed)
  test <- independence_test(
    y ~ arm | block,
    data = data.frame(y = y, arm = factor(frame$arm, levels = c("control", "treatment")), block = block),
    distribution = approximate(nresample = resamples), alternative = "two.sided"
  )
  p <- as.numeric(pvalue(test))
  add(outcome, "coin_difference_p", p, p_mcse(p, resamples))
  set.seed(seed + 1)
  p <- randomisation_p(y, redraws(resamples))
  add(outcome, "studentised_p", p, p_mcse(p, resamples))

  # (b) Welch's t-test and Fieller's interval, as % reductions 100 * (1 - theta).
  add(outcome, "welch_p", t.test(y_t, y_c, var.equal = FALSE)$p.value)
  limits <- fieller(y_t, y_c)
  add(outcome, "fieller_low_pct", 100 * (1 - limits[["high"]]))
  add(outcome, "fieller_high_pct", 100 * (1 - limits[["low"]]))

  # (c) Poisson quasi-likelihood regression with sandwich errors.
  data <- data.frame(
    y = y, arm = factor(frame$arm, levels = c("control", "treatment")),
    stratum = factor(frame$stratum), baseline = baseline
  )
  fit <- suppressWarnings(glm(y ~ arm + stratum + log1p(baseline), family = poisson, data = data))
  add(outcome, "poisson_converged", as.numeric(fit$converged))
  add(outcome, "poisson_coefficient", coef(fit)[["armtreatment"]])
  add(outcome, "poisson_pct_reduction", 100 * (1 - exp(coef(fit)[["armtreatment"]])))
  add(outcome, "poisson_se_hc0", sqrt(vcovHC(fit, type = "HC0")["armtreatment", "armtreatment"]))
  add(outcome, "poisson_se_hc1", sqrt(vcovHC(fit, type = "HC1")["armtreatment", "armtreatment"]))

  set.seed(seed + 2)
  p <- score_p(data, redraws(resamples))
  add(outcome, "poisson_score_p", p, p_mcse(p, resamples))

  # The same three randomisation tests on re-draws supplied by the caller (fdkit's own), so the
  # p-values must agree exactly: this checks the statistics and the counting, free of Monte
  # Carlo error.
  if (!is.null(given_draws)) {
    add(outcome, "given_draws_studentised_p", randomisation_p(y, given_draws))
    add(outcome, "given_draws_difference_p", randomisation_p(y, given_draws, studentise = FALSE))
    add(outcome, "given_draws_score_p", score_p(data, given_draws))
    # Each test at the edges of the interval found by inverting it: grid point k is a k / 10 %
    # reduction, a ratio theta = (1000 - k) / 1000. The studentised test divides the treated
    # outcomes by theta; the score test takes log(theta) as the treatment coefficient.
    points <- if (is.null(grid_points)) data.frame(k = numeric(0)) else grid_points[grid_points$outcome == outcome, ]
    for (i in seq_len(nrow(points))) {
      k <- points$k[i]
      theta <- (1000 - k) / 1000
      p <- if (points$test[i] == "studentised") {
        randomisation_p(ifelse(treated, y / theta, y), given_draws)
      } else {
        score_p(data, given_draws, beta = log(theta))
      }
      add(outcome, paste0("grid_p_", points$test[i], "_", k), p)
    }
  }

  # (d) Mann-Whitney / Wilcoxon rank-sum, normal approximation with the tie correction, with
  # and without the continuity correction (scipy's default applies it).
  add(outcome, "wilcox_p_corrected", wilcox.test(y_t, y_c, exact = FALSE, correct = TRUE)$p.value)
  add(outcome, "wilcox_p_uncorrected", wilcox.test(y_t, y_c, exact = FALSE, correct = FALSE)$p.value)
}

write.csv(do.call(rbind, results), out_path, row.names = FALSE)
