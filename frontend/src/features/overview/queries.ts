export {
  OverviewDocument,
  OverviewHealthChangedDocument,
  OverviewJobChangedDocument,
  type OverviewQuery,
  type OutcomeCountsFragment,
} from '@/generated/graphql'
