export {
  OverviewDocument,
  OverviewHealthChangedDocument,
  OverviewJobChangedDocument,
  RetryFailedJobsDocument,
  type OverviewQuery,
  type OutcomeCountsFragment,
} from '@/generated/graphql'
