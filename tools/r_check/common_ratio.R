# The profile score test of one common ratio of means across groups (age bands, sites), from its
# definition in base R, for fdkit's cross-check of analysis.common_ratio_test.
#
# Usage: Rscript common_ratio.R CASES.csv OUT.csv
#   CASES.csv  one row per test: case (a name), frame (a CSV path), draws (a CSV path, or empty
#              to have R draw its own re-draws), resamples and seed (for R's own re-draws)
#   frame      one row per person: arm (treatment/control), group, block (the cell the
#              assignment was drawn in: wave x stratum; every block lies within one group), y
#   draws      re-draws of the assignment made elsewhere (fdkit's own): one row per re-draw, one
#              0/1 column per person, the frame's rows in order
# Writes OUT.csv with columns case, quantity, value (17 significant digits): Q, theta (the common
# ratio where the minimum is reached), p, df, grid_points, redraws, Q_beyond (for information: the
# minimum when the search also takes the 10 grid points beyond each end), and for each group g
# own_ratio:g (its stratified ratio) and z:g (its normal score at the minimum). Nothing here calls
# or copies fdkit.
#
# The test. For a common ratio theta, within each group g:
#   - fit mu per block b under E[y] = mu_b theta^z: mu_b = sum(y_b) / (theta n_tb + n_cb), with
#     z the actual assignment and n_tb, n_cb its treated and control counts in b;
#   - residuals r = y - mu_b theta^z and projection a = theta n_tb / (theta n_tb + n_cb), both
#     of the actual assignment, held for every candidate assignment c of the group's people;
#   - T(c) = sum(c r) / sqrt(sum((c - a)^2 r^2));
#   - the observed T as a normal score among the B re-draws' T_b: the mid-rank
#     u = (#{T_b < T_obs} + #{T_b = T_obs} / 2 + 1/2) / (B + 1), ties within 1e-9 x max(1, |T_obs|),
#     and z_g(theta) = qnorm(u).
# Q = min over theta of sum_g z_g(theta)^2 and p = P(chi-squared on G - 1 >= Q). The thetas
# searched are the points k (theta = (1000 - k) / 1000) of the supremum grid lying between the
# groups' own stratified ratios (each group's root of its stratified score equation), rounded to
# the 0.1-point grid, and those two end points.

args <- commandArgs(trailingOnly = TRUE)
cases <- read.csv(args[1], stringsAsFactors = FALSE, colClasses = c(case = "character", draws = "character"))
out_path <- args[2]

# The supremum grid, from its definition: from k = 0 (theta = 1) towards a 99.9% reduction
# (k = 999) and towards a ratio of 1,000 (k = -999,000), each step at most 1% of the ratio,
# max(1, floor((1000 - k) / 100)) points, and the far end itself.
supremum_grid <- function() {
  points <- numeric(0)
  k <- 0
  while (k <= 999) {
    points <- c(points, k)
    k <- k + max(1, (1000 - k) %/% 100)
  }
  k <- 0
  while (k >= -999000) {
    points <- c(points, k)
    k <- k - max(1, (1000 - k) %/% 100)
  }
  sort(unique(c(points, -999000)))
}
GRID <- supremum_grid()

# A group's stratified ratio: the root in theta of sum_b (S_tb - theta n_tb S_b / (theta n_tb + n_cb))
# over the blocks with both arms (S sums of y, n counts). 0 when its treated have no events, Inf
# when its controls have none.
stratified_ratio <- function(y, z, block) {
  both <- names(which(tapply(z, block, function(zb) any(zb == 1) && any(zb == 0))))
  keep <- block %in% both
  y <- y[keep]; z <- z[keep]; block <- block[keep]
  s_t <- tapply(y * z, block, sum); s <- tapply(y, block, sum)
  n_t <- tapply(z, block, sum); n_c <- tapply(1 - z, block, sum)
  if (sum(s) == 0) return(NaN)
  if (sum(s_t) == 0) return(0)
  if (sum(s_t) == sum(s)) return(Inf)
  equation <- function(log_theta) {
    theta <- exp(log_theta)
    sum(s_t - theta * n_t * s / (theta * n_t + n_c))
  }
  exp(uniroot(equation, c(-50, 50), tol = 1e-14, maxiter = 10000)$root)
}

# T for the actual assignment (first row of candidates) and every re-draw, at theta.
statistics <- function(y, z, block, candidates, theta) {
  n_tb <- ave(z, block, FUN = sum)
  n_cb <- ave(1 - z, block, FUN = sum)
  mu <- ave(y, block, FUN = sum) / (theta * n_tb + n_cb)
  r <- y - mu * theta^z
  a <- theta * n_tb / (theta * n_tb + n_cb)
  u <- as.vector(candidates %*% r)
  v <- as.vector(sweep(candidates, 2, a)^2 %*% r^2)  # sum over people of (c - a)^2 r^2
  ifelse(v > 0, u / sqrt(v), ifelse(abs(u) > 1e-12 * max(1, abs(u)), sign(u) * Inf, 0))
}

# The observed statistic (first) as a normal score among the re-draws' (the rest).
normal_score <- function(values) {
  observed <- values[1]
  drawn <- values[-1]
  tolerance <- 1e-9 * (if (is.finite(observed)) max(1, abs(observed)) else 1)
  below <- sum(drawn < observed - tolerance, na.rm = TRUE) + 0.5 * sum(abs(drawn - observed) <= tolerance, na.rm = TRUE)
  qnorm((below + 0.5) / length(values))
}

profile_test <- function(y, z, block, group, draws) {
  candidates <- rbind(z, draws)
  groups <- sort(unique(group))
  members <- lapply(groups, function(g) which(group == g))
  own <- vapply(members, function(m) stratified_ratio(y[m], z[m], block[m]), numeric(1))
  found <- list(groups = groups, own = own, df = length(groups) - 1)
  if (!all(is.finite(own) & own > 0)) {
    return(c(found, list(Q = NA_real_, theta = NA_real_, p = NA_real_, z = rep(NA_real_, length(groups)), points = 0, Q_beyond = NA_real_)))
  }
  ends <- pmin(pmax(round(1000 * (1 - c(max(own), min(own)))), -999000), 999)  # k of each end
  grid <- sort(unique(c(GRID[GRID >= ends[1] & GRID <= ends[2]], ends)))
  # For information: also the 10 grid points beyond each end, to see whether the minimum would
  # lie outside the groups' own ratios (each group's score is not exactly 0 at its own ratio).
  beyond <- c(tail(GRID[GRID < ends[1]], 10), head(GRID[GRID > ends[2]], 10))
  searched <- c(grid, beyond)
  thetas <- (1000 - searched) / 1000
  parts <- lapply(members, function(m) list(y = y[m], z = z[m], block = block[m], candidates = candidates[, m, drop = FALSE]))
  scores <- vapply(thetas, function(theta) {
    vapply(parts, function(g) normal_score(statistics(g$y, g$z, g$block, g$candidates, theta)), numeric(1))
  }, numeric(length(groups)))  # groups x thetas
  sums <- colSums(scores^2)
  inside <- seq_along(grid)  # the definition's grid, ascending in k as searched
  best <- which.min(sums[inside])
  q <- sums[best]
  c(found, list(
    Q = q, theta = thetas[best], p = pchisq(q, found$df, lower.tail = FALSE), z = scores[, best],
    points = length(grid), Q_beyond = min(sums)
  ))
}

# R's own re-draws: the actual treatment labels permuted within each block.
own_redraws <- function(z, block, b) {
  draws <- matrix(0, nrow = b, ncol = length(z))
  for (level in unique(block)) {
    members <- which(block == level)
    for (i in seq_len(b)) draws[i, members] <- z[members][sample.int(length(members))]
  }
  draws
}

results <- list()
for (i in seq_len(nrow(cases))) {
  frame <- read.csv(cases$frame[i], stringsAsFactors = FALSE, colClasses = c(group = "character", block = "character"))
  z <- as.numeric(frame$arm == "treatment")
  if (is.na(cases$draws[i]) || cases$draws[i] == "") {
    set.seed(cases$seed[i])
    draws <- own_redraws(z, frame$block, cases$resamples[i])
  } else {
    draws <- unname(as.matrix(read.csv(cases$draws[i], header = FALSE)))
    if (ncol(draws) != nrow(frame)) stop("re-draws of ", ncol(draws), " people for a frame of ", nrow(frame))
    if (any(rowSums(draws) != sum(z))) stop("a re-draw treats a different number of people")
  }
  found <- profile_test(frame$y, z, frame$block, frame$group, draws)
  add <- function(quantity, value) data.frame(case = cases$case[i], quantity = quantity, value = sprintf("%.17g", value))
  results[[length(results) + 1]] <- rbind(
    add("Q", found$Q), add("theta", found$theta), add("p", found$p), add("df", found$df),
    add("grid_points", found$points), add("redraws", nrow(draws)), add("Q_beyond", found$Q_beyond),
    add(paste0("own_ratio:", found$groups), found$own), add(paste0("z:", found$groups), found$z)
  )
}
write.csv(do.call(rbind, results), out_path, row.names = FALSE)
