# Reference trees for tests/test_hierarchical.py, from R's mclust (run as a black box).
#
# Regenerate (R >= 4.2 with mclust and jsonlite), from the repository's root:
#     Rscript tests/hc_reference/generate.R
# Each data set becomes tests/hc_reference/<name>.json holding the data, R's merge matrix
# (t(unclass(hc(...))), 1-based as R prints it) and R's partitions hclass(tree, 1:9).
#
# The data go through JSON and back before R clusters them, so R and Python cluster the same
# doubles (both parse the same decimal strings with correctly rounded conversion). Generated data
# are rounded to a few decimals first so that the 15 significant digits jsonlite writes are exact.

suppressMessages({
  library(mclust)
  library(jsonlite)
})

args <- commandArgs(trailingOnly = FALSE)
script <- sub("^--file=", "", args[grep("^--file=", args)])
out_dir <- if (length(script)) dirname(normalizePath(script)) else "tests/hc_reference"

write_reference <- function(name, X, description, use = "SVD") {
  X <- unname(as.matrix(X))
  storage.mode(X) <- "double"
  X <- as.matrix(fromJSON(toJSON(X, digits = NA)))  # exactly the doubles Python will read
  tree <- hc(X, modelName = "VVV", use = use)
  n_max <- min(9, nrow(X))
  obj <- list(
    name = name,
    description = description,
    R = R.version.string,
    mclust = as.character(packageVersion("mclust")),
    call = sprintf('hclass(hc(X, modelName = "VVV", use = "%s"), 1:%d)', use, n_max),
    use = use,
    data = X,
    merge = unname(t(unclass(tree)[, , drop = FALSE])),
    hclass = unname(hclass(tree, seq_len(n_max)))
  )
  write(toJSON(obj, digits = NA, auto_unbox = TRUE, matrix = "rowmajor"),
        file.path(out_dir, paste0(name, ".json")))
  cat(sprintf("%-16s n = %4d, d = %2d\n", name, nrow(X), ncol(X)))
}

# Real data shipped with R.
write_reference("faithful", faithful,
                "Old Faithful eruptions and waiting times (R's datasets::faithful); many ties")
write_reference("iris4", iris[, 1:4],
                "iris's four measurements (R's datasets::iris); rows 102 and 143 are equal")

# Generated mixtures: centres, spreads and sizes chosen to differ between sets.
mixture <- function(sizes, d, spread = 4, seed = 1) {
  set.seed(seed)
  do.call(rbind, lapply(seq_along(sizes), function(k) {
    A <- matrix(rnorm(d * d, sd = 0.6), d, d) + diag(d)
    sweep(matrix(rnorm(sizes[k] * d), sizes[k], d) %*% A, 2, rnorm(d, sd = spread), "+")
  }))
}

write_reference("blobs_100x2", round(mixture(c(40, 35, 25), 2, seed = 11), 3),
                "three Gaussian clusters, n = 100, d = 2")

X <- round(mixture(c(150, 120, 100), 3, spread = 3, seed = 12), 1)
set.seed(13)
X <- rbind(X, X[sample(nrow(X), 30), ])
write_reference("ties_400x3", X,
                "three clusters rounded to 1 decimal (many equal distances) plus 30 duplicated rows")

write_reference("unequal_600x5", round(mixture(c(540, 50, 10), 5, spread = 5, seed = 14), 3),
                "very unequal cluster sizes 540 / 50 / 10, d = 5")

set.seed(15)
t1 <- rnorm(500); t2 <- rnorm(500)
X <- rbind(cbind(t1 * 4, t1 * 0.5 + rnorm(500, sd = 0.3), rnorm(500), rnorm(500)),
           cbind(t2 * 0.5 + rnorm(500, sd = 0.3), t2 * 4, rnorm(500), rnorm(500)))
write_reference("crossing_1000x4", round(X, 3), "two elongated clusters crossing at the origin, d = 4")

write_reference("blobs_2000x10", round(mixture(c(700, 600, 400, 300), 10, seed = 16), 3),
                "four clusters, n = 2000 (mclust's subset size), d = 10")

X <- round(mixture(c(70, 50), 3, seed = 17), 3)
write_reference("constant_120x4", cbind(X[, 1:2], 7, X[, 3]),
                "two clusters with a constant third column (dropped by the SVD transformation)")

set.seed(21)
write_reference("oned_100x1", round(matrix(c(rnorm(60), rnorm(40, 4))), 4),
                "one variable, two groups (Mclust itself starts 1-D fits from quantiles)")

# The tie rule, on raw variables (use = "VARS"): pairs at exactly equal distances.
write_reference("tie_pairs_vars", rbind(c(0, 0), c(50, 50), c(10, 0), c(11, 0), c(-40, 30),
                                        c(1, 0), c(5, 20)),
                "exact ties: pairs (1, 6) and (3, 4) at distance 1; R merges (1, 6) first",
                use = "VARS")
write_reference("tie_shared_vars", rbind(c(0, 0), c(50, 50), c(-40, 30), c(2, 0), c(30, -60),
                                         c(1, 0), c(5, 40)),
                "exact ties sharing a row: (1, 6) and (4, 6) at distance 1; R merges (4, 6) first",
                use = "VARS")
set.seed(18)
X <- round(matrix(rnorm(40), 20, 2), 2)
X <- rbind(X, X[c(3, 7, 11, 15), ])
write_reference("duplicates_vars", X,
                "20 rows and 4 duplicates: the merges of duplicates tie exactly", use = "VARS")

# The transformations: R's transformed data (attr(hc(X, use = u), "data")) for each `use`, on
# iris's measurements and on a set with a constant column.
transforms <- function(name, X) {
  X <- unname(as.matrix(X))
  storage.mode(X) <- "double"
  X <- as.matrix(fromJSON(toJSON(X, digits = NA)))
  uses <- c("VARS", "STD", "SPH", "PCS", "PCR", "SVD")
  out <- lapply(uses, function(u) unname(attr(hc(X, modelName = "VVV", use = u), "data")))
  names(out) <- uses
  write(toJSON(list(name = name, mclust = as.character(packageVersion("mclust")), data = X,
                    transformed = out), digits = I(17), matrix = "rowmajor", auto_unbox = TRUE),
        file.path(out_dir, paste0("transforms_", name, ".json")))
  cat(sprintf("transforms_%s\n", name))
}
transforms("iris4", iris[, 1:4])
set.seed(19)
transforms("constant_30x3", cbind(round(matrix(rnorm(60), 30, 2), 3), 2.5))

# R's hcVVV is not invariant to rotations of the data once the data are large (its criterion
# is): the same 100 x 3 sample, raw (use = "VARS") and rotated, gives different trees in R.
set.seed(20)
X <- round(matrix(rnorm(300), 100, 3) * 30, 3)
Q <- qr.Q(qr(matrix(c(2, 1, 0, -1, 2, 1, 0, 1, 3), 3)))
write_reference("scaled_vars", X, "100 x 3 normal sample times 30, raw variables", use = "VARS")
write_reference("scaled_rotated_vars", round(X %*% Q, 6),
                "the same sample rotated (rounded to 1e-6), raw variables", use = "VARS")
